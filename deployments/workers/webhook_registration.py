"""Register the push webhook on the Git provider when an app comes from one; remove it on
delete. Best effort both ways: a provider that refuses leaves a note on the app, never a
half-created app or a deletion stuck forever."""

import logging

from django.conf import settings

from apps.models import App
from deployments.adapters import git_providers as providers
from deployments.services.webhooks import webhook_url

logger = logging.getLogger(__name__)


def register(app: App) -> str:
    """Create the hook on the owner's provider; returns a note saying what happened."""
    if app.webhook_hook_id:
        return _note(app, "A push webhook is registered.")
    found = providers.credential_for_url(app.owner, app.repository)
    if found is None:
        return _note(app, "Not a repository of a connected provider: add the webhook by hand.")
    if not settings.PAAS_PUBLIC_URL:
        return _note(app, "PAAS_PUBLIC_URL is not set, so providers cannot reach Slipway.")
    credential, full_name = found
    try:
        hook_id = providers.create_webhook(
            app.owner,
            credential.provider,
            full_name,
            webhook_url(app, credential.provider),
            app.webhook_secret,
        )
    except providers.ProviderError as exc:
        return _note(app, f"Could not register the webhook: {exc.message}")
    App.objects.filter(pk=app.pk).update(
        webhook_provider=credential.provider, webhook_repository=full_name, webhook_hook_id=hook_id
    )
    app.webhook_provider, app.webhook_repository, app.webhook_hook_id = (
        credential.provider,
        full_name,
        hook_id,
    )
    return _note(app, f"Push webhook registered on {credential.provider}.")


def unregister(app: App) -> bool:
    if not app.webhook_hook_id:
        return False
    try:
        providers.delete_webhook(
            app.owner, app.webhook_provider, app.webhook_repository, app.webhook_hook_id
        )
    except providers.ProviderError as exc:
        # A revoked token or a gone repository must not keep the app from being deleted;
        # a leftover hook only ever gets 404s from us.
        logger.warning("could not remove the webhook of %s: %s", app.name, exc.message)
        return False
    return True


def _note(app: App, text: str) -> str:
    App.objects.filter(pk=app.pk).update(webhook_note=text[:300])
    app.webhook_note = text[:300]
    return text
