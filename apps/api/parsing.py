"""Request bodies of /api/v1: a JSON object of at most 1 MiB, as the API has always taken."""

import json

from django.core.exceptions import ValidationError
from ninja.parser import Parser

MAX_JSON_BYTES = 1024 * 1024


class JsonObjectParser(Parser):
    """ninja calls this for operations with a JSON body (never with an empty one); what it
    raises ninja passes on as a 400, with this message (see errors.http_error)."""

    def parse_body(self, request) -> dict:
        # A form sent to a JSON operation carries no JSON fields, as before. (An archive
        # upload has its own operation, which reads request.FILES and never comes here.)
        if request.content_type.startswith("multipart/"):
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
