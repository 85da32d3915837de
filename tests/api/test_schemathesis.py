"""Schemathesis against the generated OpenAPI document: requests made up from each
operation's schema, with a real bearer token on a real app, never get a 5xx, and every
answer (status, content type, body, headers) is what the document says.

Each operation is its own test, on the same fresh objects, in-process and inside the
test's transaction, which is rolled back at the end. So nothing a request queues (builds,
add-on containers, route syncs) is ever sent: jobs go out only once a transaction commits.
That is why no operation is left out, deploys and rollbacks included; the only engine
calls are quick reads (volume sizes, image lookups), and no container is live to sample.
It must stay a plain django_db test: with a committing (transactional) database, every
generated deploy would start a real Docker build.
"""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from apps.models import ApiToken

pytestmark = pytest.mark.django_db


class InTransactionWSGI:
    """Django's WSGI app, minus closing "old" database connections around each request:
    that would close the test's connection and its transaction with it. (Django's own test
    client disconnects the same two signals.)"""

    def __init__(self):
        self.handler = WSGIHandler()

    def __call__(self, environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            body = b"".join(response)
            response.close()  # sends request_finished while the signal is still off
            return [body]
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(owner) -> dict:
    _, token = ApiToken.issue(owner)
    return {"Authorization": f"Bearer {token}"}


CONFIG = {
    "generation": {"mode": "positive", "deterministic": True},
    # The document gives types; the rules (a repository URL that exists, a free name, a
    # public notification URL, a status from 100 to 599…) are the forms' and the
    # services', which may rightly refuse a request the schema allows (400, with fields).
    "checks": {"positive_data_acceptance": {"enabled": False}},
}
# The document as the API serves it (reading it needs no database).
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json", InTransactionWSGI(), config=schemathesis.Config.from_dict(CONFIG)
)


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_answers_as_its_document_says(case, path_values, bearer):
    case.path_parameters = {name: path_values[name] for name in case.path_parameters or {}}
    case.call_and_validate(headers=bearer)
