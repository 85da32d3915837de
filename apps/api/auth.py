"""Plumbing for /api/v1: bearer-token auth, JSON in and out, errors as JSON."""

import json
from functools import wraps

from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.models import ApiToken
from deployments.services import ServiceError

MAX_JSON_BYTES = 1024 * 1024


def error(status: int, message: str, code: str, fields: dict | None = None) -> JsonResponse:
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return JsonResponse(body, status=status)


def _bearer_user(request):
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    return ApiToken.authenticate(raw.strip())


def _json_body(request) -> dict:
    # A multipart upload (an archive) is read from request.FILES by its view, and must not
    # be pulled into memory whole through request.body.
    if request.content_type.startswith("multipart/"):
        return {}
    if not request.body:
        return {}
    if len(request.body) > MAX_JSON_BYTES:
        raise ValidationError("The request body is too large.")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValidationError("The request body must be a JSON object.")
    return data


def _validation_response(exc: ValidationError) -> JsonResponse:
    if hasattr(exc, "error_dict"):
        fields = {
            field: [str(m) for e in errs for m in e.messages]
            for field, errs in exc.error_dict.items()
        }
        return error(400, "Some fields are invalid.", "invalid", fields)
    return error(400, " ".join(exc.messages), "invalid")


def api_view(methods: list[str]):
    """Authenticate with a bearer token, parse JSON, and turn expected errors into JSON."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error(405, f"Use {', '.join(methods)}.", "method_not_allowed")
            user = _bearer_user(request)
            if user is None:
                return error(401, "A valid bearer token is required.", "unauthorized")
            request.user = user
            try:
                request.json = (
                    _json_body(request) if request.method in ("POST", "PATCH", "PUT") else {}
                )
                return view(request, *args, **kwargs)
            except ValidationError as exc:
                return _validation_response(exc)
            except ServiceError as exc:
                return error(exc.status, exc.message, exc.code)
            except Http404:
                return error(404, "Not found.", "not_found")

        return wrapper

    return decorate


def form_errors(form) -> ValidationError:
    return ValidationError(form.errors.as_data())
