"""{% team_switcher %}: the header's team menu, on full pages only (a context processor
would query on every htmx poll too)."""

from django import template

from apps.web.switcher import chosen_team
from deployments.services.teams import teams_of

register = template.Library()


@register.inclusion_tag("teams/_switcher.html", takes_context=True)
def team_switcher(context):
    request = context["request"]
    return {
        "teams": teams_of(request.user),
        "chosen": chosen_team(request),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }
