from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from paas import crypto


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is closed unless the operator opens it: Slipway runs code on its host."""

    def is_open_for_signup(self, request):
        return settings.PAAS_OPEN_SIGNUP


def admin_login(request):
    """Django's admin login counts no failures, so it is not a way in: it sends the
    visitor to allauth's sign-in (rate-limited in the shared cache) and back to the admin.
    Someone signed in but not staff is refused here, or the two pages would redirect to
    each other forever."""
    if request.user.is_authenticated:
        raise PermissionDenied("The admin is for staff.")
    next_url = request.GET.get("next") or reverse("admin:index")
    return redirect_to_login(next_url, login_url=reverse("account_login"))


class MFAAdapter(DefaultMFAAdapter):
    """allauth keeps the TOTP secret and the recovery codes' seed as its adapter gives them:
    Slipway's Fernet keys encrypt them, like every other secret at rest."""

    def encrypt(self, text: str) -> str:
        return crypto.encrypt(text)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(encrypted_text)
