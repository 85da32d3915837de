"""Dashboard routes, one list per page or feature. Partials (fragments htmx swaps in) end
in a noun under the page they belong to; actions are POST-only and end in a verb."""

from django.urls import path

from apps.web import (
    actions,
    audit,
    create,
    domains,
    pages,
    previews,
    promotions,
    router_pages,
    routing,
    runs,
    settings,
    teams,
)

APP = "apps/<str:name>/"
DEPLOYMENT = APP + "deployments/<int:number>/"
ENV_VAR = APP + "env/<str:environment>/<str:key>/"
PROMOTION = APP + "promotions/<int:request_id>/"
RUN = APP + "runs/<int:run_id>/"
JOB = APP + "runs/jobs/<int:job_id>/"

home = [
    path("", pages.home, name="home"),
    path("partials/apps/", pages.home_apps, name="home-apps"),
]

creating_an_app = [
    path("new/", create.app_create, name="app-create"),
    path("new/name-check/", create.name_check, name="app-name-check"),
    path("new/detect/", create.detect_preview, name="app-create-detect"),
    path("new/repositories/", create.repositories, name="app-create-repositories"),
    path("new/repository/", create.pick_repository, name="app-create-pick"),
    path("new/env-row/", create.env_row, name="app-create-env-row"),
]

app_page = [
    path(APP, pages.app_detail, name="app-detail"),
    path(APP + "status/", pages.app_status, name="app-status"),
    path(APP + "environments/", pages.app_environments, name="app-environments"),
    path(APP + "history/", pages.app_history, name="app-history"),
    path(APP + "current/", pages.app_current, name="app-current"),
    path(APP + "runtime/<str:environment>/", pages.runtime_log, name="app-runtime-log"),
    path(APP + "audit/", audit.audit_log, name="app-audit"),
]

deployment_page = [
    path(DEPLOYMENT, pages.deployment_detail, name="deployment-detail"),
    path(DEPLOYMENT + "panel/", pages.deployment_panel, name="deployment-panel"),
    path(DEPLOYMENT + "log/", pages.deployment_log, name="deployment-log"),
]

app_actions = [
    path(APP + "deploy/", actions.deploy, name="app-deploy"),
    path(APP + "archive/", actions.deploy_archive, name="app-archive"),
    path(APP + "restart/", actions.restart, name="app-restart"),
    path(APP + "stop/", actions.stop, name="app-stop"),
    path(APP + "start/", actions.start, name="app-start"),
    path(APP + "delete/", actions.delete, name="app-delete"),
    path(APP + "environments/new/", actions.environment_create, name="app-environment-create"),
    path(APP + "environments/delete/", actions.environment_delete, name="app-environment-delete"),
]

deployment_actions = [
    path(DEPLOYMENT + "redeploy/", actions.redeploy, name="deployment-redeploy"),
    path(DEPLOYMENT + "rollback/", actions.rollback, name="deployment-rollback"),
    path(DEPLOYMENT + "cancel/", actions.cancel, name="deployment-cancel"),
]

promoting = [
    path(APP + "promote/", actions.promote, name="app-promote"),
    path(APP + "pipeline/", actions.pipeline, name="app-pipeline"),
    path(APP + "pipeline/panel/", pages.app_pipeline, name="app-pipeline-panel"),
    path(APP + "promotions/", promotions.promotions, name="app-promotions"),
    path(PROMOTION + "approve/", actions.promotion_approve, name="promotion-approve"),
    path(PROMOTION + "reject/", actions.promotion_reject, name="promotion-reject"),
]

app_settings = [
    path(APP + "settings/", settings.app_settings, name="app-settings"),
    path(APP + "env/<str:environment>/", settings.env_set, name="app-env-set"),
    path(ENV_VAR + "reveal/", settings.env_reveal, name="app-env-reveal"),
    path(ENV_VAR + "delete/", settings.env_delete, name="app-env-delete"),
    path(ENV_VAR + "protect/", settings.env_protect, name="app-env-protect"),
    path(APP + "previews/", previews.preview_settings, name="app-previews-settings"),
]

domains_and_volumes = [
    path(APP + "domains/", domains.domains, name="app-domains"),
    path(APP + "domains/<str:hostname>/delete/", domains.domain_delete, name="app-domain-delete"),
    path(APP + "domains/<str:hostname>/verify/", domains.domain_verify, name="app-domain-verify"),
    path(APP + "volumes/", domains.volumes, name="app-volumes"),
    path(APP + "volumes/<int:volume_id>/delete/", domains.volume_delete, name="app-volume-delete"),
]

routing_and_scaling = [
    path(APP + "routing/<str:environment>/", routing.routing_settings, name="app-routing"),
    path(APP + "scale/", routing.scale, name="app-scale"),
    path(APP + "formation/", routing.formation, name="app-formation"),
]

# The app page's "Run a command" card: one-off runs and scheduled jobs.
runs_and_jobs = [
    path(APP + "runs/", runs.runs_card, name="app-runs"),
    path(APP + "runs/start/", runs.run_start, name="run-start"),
    path(RUN + "output/", runs.run_output, name="run-output"),
    path(RUN + "cancel/", runs.run_cancel, name="run-cancel"),
    path(APP + "runs/jobs/add/", runs.job_add, name="job-add"),
    path(JOB + "toggle/", runs.job_toggle, name="job-toggle"),
    path(JOB + "delete/", runs.job_delete, name="job-delete"),
]

# What the router shows instead of a stopped or maintenance app: no sign-in.
pages_for_the_router = [
    path("_slipway/page/<str:route_id>/", router_pages.router_page, name="router-page"),
]

api_tokens = [
    path("settings/tokens/", settings.tokens, name="settings-tokens"),
    path("settings/tokens/<int:pk>/revoke/", settings.token_revoke, name="token-revoke"),
]

TEAM = "teams/<int:team_id>/"
MEMBER = TEAM + "members/<str:username>/"
team_pages = [
    path("teams/", teams.teams_page, name="teams"),
    path("teams/switch/", teams.switch_team, name="team-switch"),
    path(TEAM, teams.team_detail, name="team-detail"),
    path(TEAM + "require-mfa/", teams.require_mfa, name="team-require-mfa"),
    path(TEAM + "delete/", teams.team_delete, name="team-delete"),
    path(MEMBER + "role/", teams.member_role, name="team-member-role"),
    path(MEMBER + "remove/", teams.member_remove, name="team-member-remove"),
    path(TEAM + "invite/", teams.invite, name="team-invite"),
    path(
        TEAM + "invitations/<int:invitation_id>/revoke/",
        teams.invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("teams/invitations/<str:token>/", teams.invitation_page, name="team-invitation"),
]

urlpatterns = [
    *home,
    *creating_an_app,
    *app_page,
    *deployment_page,
    *app_actions,
    *deployment_actions,
    *promoting,
    *app_settings,
    *domains_and_volumes,
    *routing_and_scaling,
    *runs_and_jobs,
    *pages_for_the_router,
    *api_tokens,
    *team_pages,
]
