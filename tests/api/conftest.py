"""Fixtures of the API tests that walk every operation."""

import pytest

from apps.models import Backup, BackupStatus
from apps.models.notifications import NotificationTarget
from deployments import services
from deployments.models import LogDrain, PromotionRequest, Run, ScheduledJob
from deployments.services import addons, domains, teams

DOMAIN = "www.demo.example"


@pytest.fixture
def path_values(owner, outsider, make_app) -> dict:
    """A real object behind every path parameter, so operations get past the 404."""
    app = make_app("demo")
    deployment = services.queue_deployment(app, "production", requested_by=owner)
    addon = addons.attach(app, "production", "postgres")
    backup = Backup.objects.create(addon=addon, status=BackupStatus.SUCCEEDED)
    volume = domains.add_volume(app, "production", "data", "/data")
    domains.add_domain(app, "production", DOMAIN)
    # Straight to the model: the service would resolve the URL's host name.
    target = NotificationTarget.objects.create(app=app, url="https://hooks.example/", secret="s")
    drain = LogDrain.objects.create(app=app, kind="https", url="https://logs.example/", secret="s")
    env = app.environment("production")
    services.set_env_vars(env, {"GREETING": "hello"})
    # Someone else asked, so the owner may decide on it.
    request = PromotionRequest.objects.create(
        app=app,
        requested_by=outsider,
        source_environment=app.environment("staging"),
        target_environment=env,
    )
    run = Run.objects.create(app=app, environment=env, command="true")
    job = ScheduledJob.objects.create(environment=env, name="j", schedule="0 3 * * *", command="id")
    team = teams.create_team(owner, "crew")
    invitation = teams.invite(team, owner, "someone@example.com", "viewer")
    return {
        "name": app.name,
        "environment": "production",
        "key": "GREETING",
        "number": deployment.number,
        "addon_id": addon.pk,
        "backup_id": backup.pk,
        "volume_id": volume.pk,
        "hostname": DOMAIN,
        "target_id": target.pk,
        "drain_id": drain.pk,
        "request_id": request.pk,
        "run_id": run.pk,
        "job_id": job.pk,
        "team_id": team.pk,
        "username": owner.username,
        "invitation_id": invitation.pk,
    }
