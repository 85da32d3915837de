"""How /api/v1 refuses: always {"error": {"code", "message", "fields"?}}, with a 4xx status
(503 when the container engine does not answer).

Operations raise (ServiceError, ValidationError, Http404); the handlers registered here on
the NinjaAPI turn that into the answer, so no operation builds an error itself.
"""

from functools import wraps

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from apps.api.auth import ReadOnlyToken
from apps.errors import error_response as error
from apps.models.tokens import TokenExpired
from apps.two_factor import MfaRequired

# The one adapter import of the API: the services let the engine's own error through
# (resource_usage, runtime_logs), and it is answered as 503 here.
from deployments.adapters.runtime import RuntimeBackendError
from deployments.services import ServiceError

# The order the Allow list has always been given in ("Use GET, POST.").
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
# pydantic's wording where Django's forms say it differently: one voice for the API.
SCHEMA_MESSAGES = {"missing": "This field is required.", "extra_forbidden": "Unknown field."}


def validation_error(exc: DjangoValidationError) -> JsonResponse:
    """A form's or a model's ValidationError: per field when it names fields."""
    if hasattr(exc, "error_dict"):
        fields = {
            field: [str(m) for e in errs for m in e.messages]
            for field, errs in exc.error_dict.items()
        }
        return error(400, "Some fields are invalid.", "invalid", fields)
    return error(400, " ".join(exc.messages), "invalid")


def schema_error(exc: NinjaValidationError) -> JsonResponse:
    """A request that does not fit its schema: per field, named as in the request."""
    fields: dict[str, list[str]] = {}
    for item in exc.errors:
        fields.setdefault(_field_name(item["loc"]), []).append(_schema_message(item))
    unknown_only = all(item["type"] == "extra_forbidden" for item in exc.errors)
    message = "Unknown fields." if unknown_only else "Some fields are invalid."
    return error(400, message, "invalid", fields)


def _field_name(loc: tuple) -> str:
    # ("body", "payload", "env", "production", "KEY") -> "env.production.KEY";
    # ("query", "after") -> "after". The body's own parameter name is ninja's, not the API's.
    source, *path = loc
    if source == "body" and path:
        path = path[1:]
    return ".".join(str(part) for part in path) or source


def _schema_message(item: dict) -> str:
    if item["type"] in SCHEMA_MESSAGES:
        return SCHEMA_MESSAGES[item["type"]]
    if item["type"] == "value_error":
        return str(item["ctx"]["error"])  # our own validators' words, without pydantic's prefix
    return item["msg"]


def http_error(exc: HttpError) -> JsonResponse:
    # ninja wraps what the body parser raised; the parser's message says what is wrong.
    if isinstance(exc.__cause__, DjangoValidationError):
        return validation_error(exc.__cause__)
    return error(exc.status_code, str(exc), "invalid")


def register_error_handlers(api: NinjaAPI) -> None:
    handlers = {
        NinjaValidationError: schema_error,
        DjangoValidationError: validation_error,
        ServiceError: lambda exc: error(
            exc.status, exc.message, exc.code, getattr(exc, "fields", None)
        ),
        Http404: lambda exc: error(404, "Not found.", "not_found"),
        AuthenticationError: lambda exc: error(
            401, "A valid bearer token is required.", "unauthorized"
        ),
        TokenExpired: lambda exc: error(
            401, "This token has expired: create a new one on the API tokens page.", "token_expired"
        ),
        ReadOnlyToken: lambda exc: error(
            403,
            "This token is read-only: it may only GET. Use a read-write token to change things.",
            "read_only_token",
        ),
        MfaRequired: lambda exc: error(403, exc.message, "mfa_required"),
        HttpError: http_error,
        RuntimeBackendError: lambda exc: error(
            503, f"The container engine did not answer: {exc.message}", exc.code
        ),
    }
    for exc_class, handler in handlers.items():
        api.add_exception_handler(exc_class, _ignoring_request(handler))


def _ignoring_request(handler):
    def handle(request, exc):
        return handler(exc)

    return handle


def json_method_not_allowed(view):
    """ninja answers a method a path does not take with a bare 405; answer it in the API's
    error format instead, naming the methods that work (checked before the token, as ever)."""

    @wraps(view)
    def answer(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        allowed = [m for m in METHOD_ORDER if m in response["Allow"].split(", ")]
        refusal = error(405, f"Use {', '.join(allowed)}.", "method_not_allowed")
        refusal["Allow"] = response["Allow"]
        return refusal

    return answer
