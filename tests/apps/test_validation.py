import pytest
from django.core.exceptions import ValidationError

from apps.models import App
from apps.validators import validate_app_name, validate_env_key, validate_env_value

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", ["a", "web", "my-app-2", "x" * 63, "0day", "a-b-c"])
def test_it_accepts_dns_labels(name):
    validate_app_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-app",
        "app-",
        "My_App",
        "app.example",
        "a" * 64,
        "www",
        "admin",
        "api",
        "café",
        "foo-staging",
        "has space",
        "<script>",
    ],
)
def test_it_refuses_bad_app_names(name):
    with pytest.raises(ValidationError):
        validate_app_name(name)


@pytest.mark.parametrize("key", ["A", "_", "DATABASE_URL", "a1", "_x_Y_9"])
def test_it_accepts_env_keys(key):
    validate_env_key(key)


@pytest.mark.parametrize("key", ["", "1ABC", "A-B", "A B", "A=B", "ÄB", "$X"])
def test_it_refuses_bad_env_keys(key):
    with pytest.raises(ValidationError):
        validate_env_key(key)


def test_it_refuses_values_over_32_kib():
    validate_env_value("x" * 32 * 1024)
    with pytest.raises(ValidationError):
        validate_env_value("x" * (32 * 1024 + 1))


def test_it_refuses_a_duplicate_name_in_another_case_through_the_api(api, make_app):
    make_app("taken")
    response = api.post("/apps", {"name": "TAKEN", "repository": "https://example.com/a/b.git"})
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
    assert App.objects.count() == 1


def test_the_database_refuses_names_equal_but_for_case(make_app, owner):
    from django.db import IntegrityError, transaction

    make_app("unique")
    with pytest.raises(IntegrityError), transaction.atomic():
        # Bypass save()'s lower-casing to prove the functional index itself holds.
        App.objects.bulk_create([App(name="UNIQUE", owner=owner, repository="https://e.com/a.git")])


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "bad_name", "repository": "https://example.com/a.git"}, "name"),
        (
            {
                "name": "ok",
                "repository": "https://example.com/a.git",
                "env": {"production": {"1BAD": "x"}},
            },
            "env.production.1BAD",
        ),
        (
            {
                "name": "ok",
                "repository": "https://example.com/a.git",
                "env": {"production": {"BIG": "x" * (32 * 1024 + 1)}},
            },
            "env.production.BIG",
        ),
        ({"name": "ok", "repository": "https://example.com/a.git", "env": {"qa": {}}}, "env"),
        ({"name": "ok", "repository": "https://example.com/a.git", "port": 70000}, "port"),
        ({"name": "ok", "repository": "ftp://example.com/a.git"}, "repository"),
        (
            {"name": "ok", "repository": "https://example.com/a.git", "branch": "--upload-pack=x"},
            "branch",
        ),
        (
            {"name": "ok", "repository": "https://example.com/a.git", "build": "cobol"},
            "build_method",
        ),
    ],
)
def test_the_api_answers_400_with_field_errors_and_changes_nothing(api, body, field):
    response = api.post("/apps", body)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert App.objects.count() == 0


def test_the_api_refuses_a_body_that_is_not_json(api):
    response = api.client.post(
        "/api/v1/apps", data="{nope", content_type="application/json", headers=api.headers
    )
    assert response.status_code == 400
    assert App.objects.count() == 0
