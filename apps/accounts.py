from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    """Sign-up is closed unless the operator opens it: Slipway runs code on its host."""

    def is_open_for_signup(self, request):
        return settings.PAAS_OPEN_SIGNUP
