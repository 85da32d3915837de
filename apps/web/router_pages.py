"""The page the router shows instead of an app (it cannot answer with a page itself): a
stopped or maintenance environment's route sends every request here, to
/_slipway/page/<route_id>/ on the dashboard, whatever its method and path were.

No sign-in: the visitor is whoever opened the app's address. The answer is 503 with
Retry-After and a self-contained page (no assets: the dashboard's own may not be reachable
under the app's host), saying what deployments.services.routing.router_page says.
"""

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from apps.models import Domain, Environment, EnvironmentName
from deployments.services import routing

RETRY_AFTER_SECONDS = 30


def environment_of_route(route_id: str) -> Environment:
    """`<PAAS_INSTANCE>-<app>-<environment>` (Environment.route_id), or 404. Past the
    instance it is `<app>-production`, or else exactly the environment's unique host label
    (no other environment's name ends in -production)."""
    prefix = f"{settings.PAAS_INSTANCE}-"
    rest = route_id.removeprefix(prefix)
    if not route_id.startswith(prefix) or not rest:
        raise Http404("no such route")
    found = Environment.objects.select_related("app")
    production = EnvironmentName.PRODUCTION
    if rest.endswith(f"-{production}"):
        found = found.filter(app__name=rest.removesuffix(f"-{production}"), name=production)
    else:
        found = found.filter(host_label=rest).exclude(name=production)
    env = found.first()
    if env is None or not env.is_routed:
        raise Http404("no such route")  # an internal environment has no route
    return env


@csrf_exempt  # a form posted to a stopped app gets the page too, not a CSRF refusal
@never_cache
def router_page(request, route_id):
    domain = Domain.pending_for_check_route(route_id)
    if domain is not None:
        # The ownership check of a domain not yet verified (its route matches its check
        # path only): the token, which is what Slipway's fetch expects back.
        return HttpResponse(domain.token, content_type="text/plain")
    env = environment_of_route(route_id)
    text = routing.router_page(env) or routing.STOPPED_PAGE
    context = {"env": env, "text": text, "maintenance": env.maintenance}
    response = render(request, "router/page.html", context, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
