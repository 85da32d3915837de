import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from apps.models import EnvVar

pytestmark = pytest.mark.django_db

SECRET = "admin-must-not-show-this"


@pytest.fixture
def admin_client_with_data(staff, make_app):
    app = make_app("shop")
    env = app.environment("production")
    EnvVar.objects.create(environment=env, key="TOKEN", value=SECRET)
    deployment = app.new_deployment(env)
    deployment.log("Step 1/3 : FROM python")
    client = Client()
    client.force_login(staff)
    return client, app, deployment


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/apps/app/",
        "/admin/apps/envvar/",
        "/admin/deployments/deployment/",
        "/admin/deployments/deployment/?status__exact=pending",
        "/admin/apps/apitoken/",
        "/admin/apps/addon/",
        "/admin/apps/backup/",
        "/admin/apps/notificationtarget/",
        "/admin/apps/notificationdelivery/",
        "/admin/deployments/webhookdelivery/",
        "/admin/deployments/promotionpolicy/",
        "/admin/deployments/promotionrequest/",
        "/admin/deployments/run/",
        "/admin/deployments/scheduledjob/",
    ],
)
def test_admin_pages_render(admin_client_with_data, path):
    client, _, _ = admin_client_with_data
    response = client.get(path)
    assert response.status_code == 200
    assert SECRET.encode() not in response.content


def test_admin_change_pages_render_without_secrets(admin_client_with_data):
    client, app, deployment = admin_client_with_data
    var = EnvVar.objects.get()
    for path in [
        f"/admin/apps/app/{app.pk}/change/",
        f"/admin/apps/envvar/{var.pk}/change/",
        f"/admin/deployments/deployment/{deployment.pk}/change/",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert SECRET.encode() not in response.content
    assert (
        b"Step 1/3 : FROM python"
        in client.get(f"/admin/deployments/deployment/{deployment.pk}/change/").content
    )


def test_admin_cancel_action_cancels_a_pending_deployment(admin_client_with_data):
    client, _, deployment = admin_client_with_data
    response = client.post(
        "/admin/deployments/deployment/",
        {"action": "cancel", "_selected_action": [deployment.pk]},
        follow=True,
    )
    assert response.status_code == 200
    deployment.refresh_from_db()
    assert deployment.status == "cancelled"


def test_admin_envvar_keeps_value_when_submitted_empty(admin_client_with_data):
    client, _, _ = admin_client_with_data
    var = EnvVar.objects.get()
    response = client.post(
        f"/admin/apps/envvar/{var.pk}/change/",
        {"environment": var.environment_id, "key": "TOKEN", "value": ""},
    )
    assert response.status_code == 302
    assert EnvVar.objects.get().value == SECRET


def test_a_protected_env_var_is_neither_changed_nor_deleted_in_the_admin(admin_client_with_data):
    """It is the team's admins' and owners' (apps/access.py), not the platform's superusers'."""
    client, _, _ = admin_client_with_data
    EnvVar.objects.update(protected=True)
    var = EnvVar.objects.get()
    changed = client.post(
        f"/admin/apps/envvar/{var.pk}/change/",
        {"environment": var.environment_id, "key": "TOKEN", "value": "overwritten"},
    )
    deleted = client.post(f"/admin/apps/envvar/{var.pk}/delete/", {"post": "yes"})
    assert changed.status_code == 403 and deleted.status_code == 403
    assert EnvVar.objects.get().value == SECRET
    page = client.get(f"/admin/apps/envvar/{var.pk}/change/")
    assert page.status_code == 200 and SECRET not in page.content.decode()


def test_a_staff_member_who_may_only_view_sees_no_value(staff, make_app, django_user_model):
    operator = django_user_model.objects.create_user("viewer-op", "", "pw-op-123", is_staff=True)
    operator.user_permissions.add(*Permission.objects.filter(codename="view_envvar"))
    var = EnvVar.objects.create(
        environment=make_app("shop").environment("production"), key="TOKEN", value=SECRET
    )
    client = Client()
    client.force_login(operator)
    page = client.get(f"/admin/apps/envvar/{var.pk}/change/")
    assert page.status_code == 200 and "TOKEN" in page.content.decode()
    assert SECRET not in page.content.decode()
