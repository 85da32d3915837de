"""The JSON error body every machine-facing way in answers with (the API, the webhooks):
{"error": {"code", "message", "fields"?}} — a stable code, and a message that says what to do."""

from django.http import JsonResponse


def error_body(message: str, code: str, fields: dict | None = None) -> dict:
    body = {"error": {"code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return body


def error_response(status: int, message: str, code: str, fields: dict | None = None):
    return JsonResponse(error_body(message, code, fields), status=status)
