"""Request-wide middleware: the audit log's actor, and the request body cap."""

from django.conf import settings
from django.http import HttpResponse

from apps.errors import error_response
from paas.actor import Actor, acting

# The first path segment says which way in a request took.
SOURCES = {"api": "api", "admin": "admin", "hooks": "webhook"}
# Ways in whose clients are programs: they get the API's JSON error body.
MACHINE_SOURCES = frozenset({"api", "webhook"})
MIB = 1024 * 1024


def audit_actor(get_response):
    def middleware(request):
        with acting(Actor(source_of(request), request)):
            return get_response(request)

    return middleware


def request_size_limit(get_response):
    """Refuse a body over PAAS_MAX_REQUEST_BYTES from its Content-Length alone, before
    Django reads (or spools to disk) any of it. Behind the router this never fires: its
    buffering middleware refuses first; it guards gunicorn reached another way.

    A chunked body (no Content-Length) is refused with 411: Django reads a body only up to
    Content-Length, so it would see such a body as empty, and nothing would bound it."""

    def middleware(request):
        return _refusal(request) or get_response(request)

    return middleware


def source_of(request) -> str:
    segment = request.path.strip("/").split("/", 1)[0]
    return SOURCES.get(segment, "dashboard")


def _refusal(request) -> HttpResponse | None:
    limit = settings.PAAS_MAX_REQUEST_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if not length and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        message = "Send the request with a Content-Length header (chunked bodies are refused)."
        return _answer(request, 411, message, "length_required")
    if length.isdigit() and int(length) > limit:
        return _answer(request, 413, _too_large_message(limit), "request_too_large")
    return None


def _too_large_message(limit: int) -> str:
    archive_mib = settings.PAAS_ARCHIVE_MAX_BYTES / MIB
    return (
        f"The request body is larger than {limit / MIB:g} MiB (PAAS_MAX_REQUEST_BYTES); "
        f"an uploaded archive may be up to {archive_mib:g} MiB."
    )


def _answer(request, status: int, message: str, code: str) -> HttpResponse:
    if source_of(request) in MACHINE_SOURCES:
        return error_response(status, message, code)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
