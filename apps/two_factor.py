"""Two-factor sign-in (allauth.mfa): who must use it, the one place that sends such a user
to set it up, and the account events it adds to the audit log.

`requires_mfa(user)` is the one rule: the operator's switches, or a team of the user's
whose owner requires it of every member. Both ways in enforce it: the middleware below
(dashboard and admin) and the API's bearer auth (apps/api/auth.py, 403 mfa_required), so a
token is no way around it.
"""

from allauth.account.authentication import get_authentication_records
from allauth.account.signals import user_logged_in
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.dispatch import receiver
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from apps.models import AuditEntry, Team
from paas.actor import Actor, acting
from paas.middleware import source_of

# Ways in that stay open to a user who must set up 2FA and has not: allauth's own pages (the
# set-up itself, sign-out, password), static files, and what providers or the router call
# (they carry no session user). The API enforces the rule itself, on the token's user.
OPEN_PREFIXES = ("/accounts/", "/static/", "/api/", "/hooks/", "/_slipway/")


class MfaRequired(Exception):
    """An API call by a user who must use 2FA and has none (answered 403 mfa_required)."""

    def __init__(self, user):
        self.message = (
            f"{why_mfa(user)} Set it up on the dashboard's Security page (/accounts/2fa/), "
            "then use the API again."
        )
        super().__init__(self.message)


def requires_mfa(user) -> bool:
    """Whether this user must sign in with a second factor (PAAS_REQUIRE_MFA for everyone,
    PAAS_REQUIRE_MFA_FOR_STAFF for staff, a team's require_mfa for its members)."""
    if settings.PAAS_REQUIRE_MFA:
        return True
    if user.is_staff and settings.PAAS_REQUIRE_MFA_FOR_STAFF:
        return True
    return Team.one_requires_mfa_of(user)


def teams_requiring_mfa(user):
    return Team.objects.filter(memberships__user=user, require_mfa=True).order_by("name")


def why_mfa(user) -> str:
    """What the user is told: the teams that require it, by name, when it is theirs."""
    names = list(teams_requiring_mfa(user).values_list("name", flat=True))
    if not names:
        return "Your account must use two-factor sign-in."
    if len(names) == 1:
        return f"Your account must use two-factor sign-in: the team {names[0]} requires it."
    return f"Your account must use two-factor sign-in: the teams {', '.join(names)} require it."


def has_mfa(user) -> bool:
    return is_mfa_enabled(user)


def must_set_up_mfa(user) -> bool:
    return user.is_authenticated and requires_mfa(user) and not has_mfa(user)


def mfa_required(get_response):
    """Middleware: a signed-in user who must use 2FA and has none sees the Security page,
    not the dashboard or the admin, until they set it up."""

    def middleware(request):
        if request.path.startswith(OPEN_PREFIXES) or not must_set_up_mfa(request.user):
            return get_response(request)
        return _to_set_up(request)

    return middleware


def _to_set_up(request):
    url = reverse("mfa_index")
    if request.htmx:  # a fragment's poll: the whole tab goes, not a page inside the fragment
        return HttpResponseClientRedirect(url)
    messages.warning(request, f"{why_mfa(request.user)} Set it up to continue.")
    return redirect(url)


# --- the audit log: account events have no app, staff read them in the admin ------------------
# allauth sends some of these on commit, which may run after the request's middleware has
# let go of its actor: each entry names the signal's own request (and so its user) instead.


def _record(request, action: str, authenticator_type: str) -> None:
    with acting(Actor(source_of(request), request)):
        AuditEntry.record(action, target=authenticator_type)


@receiver(user_logged_in)
def _record_mfa_sign_in(sender, request, user, **kwargs):
    for step in get_authentication_records(request, user):
        if step.get("method") == "mfa" and not step.get("reauthenticated"):
            _record(request, "account.mfa_sign_in", step.get("type", ""))
            return


@receiver(authenticator_added)
def _record_mfa_added(sender, request, authenticator, **kwargs):
    _record(request, "account.mfa_added", authenticator.type)


@receiver(authenticator_removed)
def _record_mfa_removed(sender, request, authenticator, **kwargs):
    _record(request, "account.mfa_removed", authenticator.type)


@receiver(authenticator_reset)
def _record_mfa_reset(sender, request, authenticator, **kwargs):
    _record(request, "account.mfa_reset", authenticator.type)
