"""Two-factor sign-in (allauth.mfa): who must use it, the one place that sends such a user
to set it up, and the account events it adds to the audit log.

`requires_mfa(user)` is the one rule. Today it reads the operator's switches; a team's
"every member uses 2FA" flag joins it here, and everything that enforces the rule (the
middleware below) follows.
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

from apps.models import AuditEntry
from paas.actor import Actor, acting
from paas.middleware import source_of

# Ways in that stay open to a user who must set up 2FA and has not: allauth's own pages (the
# set-up itself, sign-out, password), static files, and what bearer tokens, providers or
# the router call (they carry no session user).
OPEN_PREFIXES = ("/accounts/", "/static/", "/api/", "/hooks/", "/_slipway/")
SET_UP_FIRST = "Your account must use two-factor sign-in: set it up to continue."


def requires_mfa(user) -> bool:
    """Whether this user must sign in with a second factor (PAAS_REQUIRE_MFA for everyone,
    PAAS_REQUIRE_MFA_FOR_STAFF for staff)."""
    if settings.PAAS_REQUIRE_MFA:
        return True
    return bool(user.is_staff and settings.PAAS_REQUIRE_MFA_FOR_STAFF)


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
    messages.warning(request, SET_UP_FIRST)
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
