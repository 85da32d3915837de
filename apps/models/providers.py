"""Git-provider credentials: the OAuth tokens a sign-in with GitHub, GitLab or Gitea yields.

allauth would keep them in SocialToken as plain text, so SOCIALACCOUNT_STORE_TOKENS is off and
the receivers below keep them here, encrypted. They live in this module because apps.models
imports it while Django loads models, so they are connected before any request.
"""

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from allauth.account.signals import user_signed_up
from allauth.socialaccount.signals import (
    social_account_added,
    social_account_removed,
    social_account_updated,
)
from django.conf import settings
from django.db import models
from django.dispatch import receiver
from django.utils import timezone

from paas.crypto import EncryptedTextField

# A token this close to its expiry is refreshed before use: a clone or an API call that starts
# with a token about to lapse would fail half-way.
EXPIRY_MARGIN = timedelta(seconds=60)


class ProviderKind(models.TextChoices):
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    GITEA = "gitea", "Gitea"


class ProviderCredential(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_credentials"
    )
    provider = models.CharField(max_length=16, choices=ProviderKind)
    api_url = models.CharField("base API URL", max_length=500)
    web_url = models.CharField(
        "web URL", max_length=500, help_text="The host clone URLs use; OAuth lives under it."
    )
    account_id = models.CharField(max_length=64, blank=True)
    login = models.CharField("account login", max_length=255, blank=True)
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider"]
        constraints = [
            models.UniqueConstraint(fields=["user", "provider"], name="provider_credential_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} account {self.login or self.account_id}"

    @property
    def display_name(self) -> str:
        return self.get_provider_display()

    @property
    def web_host(self) -> str:
        return urlsplit(self.web_url).netloc.lower()

    def expires_soon(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now() + EXPIRY_MARGIN

    def set_tokens(self, access: str, refresh: str, expires_at: datetime | None) -> None:
        self.access_token = access
        # Providers that rotate refresh tokens send a new one; others send none: keep ours.
        self.refresh_token = refresh or self.refresh_token
        self.expires_at = expires_at

    @classmethod
    def capture(cls, user, sociallogin) -> "ProviderCredential | None":
        """Keep (or update) the tokens of a sign-in or connect; None for other providers."""
        provider, token = sociallogin.account.provider, sociallogin.token
        if provider not in ProviderKind.values or token is None or not token.token:
            return None
        credential = cls.objects.filter(user=user, provider=provider).first()
        credential = credential or cls(user=user, provider=provider)
        urls = settings.PAAS_GIT_PROVIDERS[provider]
        credential.web_url, credential.api_url = urls["web_url"], urls["api_url"]
        data = sociallogin.account.extra_data or {}
        credential.account_id = str(sociallogin.account.uid or "")
        credential.login = data.get("login") or data.get("username") or ""
        credential.set_tokens(token.token, token.token_secret, token.expires_at)
        credential.save()
        return credential


@receiver(social_account_added)
@receiver(social_account_updated)
def _keep_tokens(sender, request, sociallogin, **kwargs):
    """Connect (added) and sign-in with an account already known (updated)."""
    ProviderCredential.capture(sociallogin.user, sociallogin)


@receiver(user_signed_up)
def _keep_tokens_of_signup(sender, request, user, sociallogin=None, **kwargs):
    """A first sign-in that creates the user sends neither signal above."""
    if sociallogin is not None:
        ProviderCredential.capture(user, sociallogin)


@receiver(social_account_removed)
def _forget_tokens(sender, request, socialaccount, **kwargs):
    ProviderCredential.objects.filter(
        user=socialaccount.user, provider=socialaccount.provider
    ).delete()
