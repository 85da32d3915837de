"""Webhook endpoints for Git providers: thin views over deployments.services.webhooks.

No login and no CSRF token: a provider proves itself with the app's webhook secret, which
the service checks.
"""

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.errors import error_response as error
from deployments.services import ServiceError, webhooks


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


@csrf_exempt
@require_POST
def receive(request, provider, name):
    # Refused on the declared length, before Django reads the body into memory.
    if _declared_length(request) > webhooks.MAX_BODY_BYTES:
        return error(413, "The payload is larger than 1 MiB.", "payload_too_large")
    try:
        received = webhooks.receive(
            provider, name, request.headers, request.body, request.content_type or ""
        )
    except ServiceError as exc:
        return error(exc.status, exc.message, exc.code)
    if received.pong:
        return JsonResponse({"pong": True})
    if received.ignored:
        return JsonResponse({"ignored": received.ignored})
    if received.deployment is None and received.preview is not None:
        return JsonResponse(_preview_answer(received.preview), status=202)
    d = received.deployment
    return JsonResponse(
        {
            "number": d.number,
            "status": d.status,
            "environment": d.environment.name,
            "commit": d.commit_sha,
        },
        status=202,
    )


def _preview_answer(preview) -> dict:
    deleting = preview.environment.cleanup_requested
    return {
        "preview": preview.environment_name,
        "status": "deleting" if deleting else preview.status,
        "commit": preview.head_sha,
    }
