"""Formation: how many containers of each process type an environment runs.

Web's count is Environment.replicas (what the router balances); the other types' counts
are Environment.formation. A change is saved, then applied by a SCALE deployment of the
live image (no build, no release phase: the same release), which starts the new set,
health-checks web and switches to it with no failed request. With nothing live, the counts
are only saved and the next deployment starts that many.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.models import App, Environment
from deployments.models import ACTIVE_STATUSES, WEB, Deployment, Trigger
from deployments.services import Conflict, _reusable_image, _run_image_again, environment_named
from deployments.services.audit import audited

PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]{1,63}")


def process_commands(environment: Environment) -> dict[str, str]:
    """The process types the environment knows and their commands: the live deployment's,
    else the latest one's that got as far as reading its Procfile, else web alone."""
    if environment.live_deployment_id:
        return environment.live_deployment.processes
    latest = environment.deployments.filter(step_data__has_key="processes").first()
    return latest.processes if latest else {WEB: ""}


def formation(environment: Environment) -> dict:
    """{"environment", "processes": {type: {"replicas", "command"}}} (web first)."""
    commands = process_commands(environment)
    kinds = sorted(commands, key=lambda kind: (kind != WEB, kind))
    return {
        "environment": environment.name,
        "processes": {
            kind: {"replicas": environment.process_count(kind), "command": commands[kind]}
            for kind in kinds
        },
    }


@audited(
    "formation.set",
    target=lambda r, app, env, *a, **k: env,
    details=lambda r, app, env, counts, *a, **k: {"processes": counts},
)
def set_formation(
    app: App, environment_name: str, counts, requested_by=None
) -> tuple[Environment, Deployment | None]:
    """Save the counts and apply them; returns the environment and the SCALE deployment
    (None: nothing changed, or nothing is live yet). A refusal changes nothing."""
    environment = environment_named(app, environment_name)
    cleaned = _clean_counts(counts, set(process_commands(environment)))
    check_can_scale(app, environment)
    changed = {k: n for k, n in cleaned.items() if environment.process_count(k) != n}
    if not changed:
        return environment, None
    source = None
    if environment.live_deployment_id is not None:
        source = _reusable_image(environment.live_deployment, "scale")
    with transaction.atomic():
        locked = Environment.objects.select_for_update(no_key=True).get(pk=environment.pk)
        others = {**locked.formation, **{k: n for k, n in changed.items() if k != WEB}}
        replicas = changed.get(WEB, locked.replicas)
        Environment.objects.filter(pk=locked.pk).update(replicas=replicas, formation=others)
        environment.replicas, environment.formation = replicas, others
        if source is None:
            return environment, None
        return environment, _run_image_again(source, environment.name, Trigger.SCALE, requested_by)


def _clean_counts(counts, known: set[str]) -> dict[str, int]:
    if not isinstance(counts, dict) or not counts:
        raise ValidationError(
            {"processes": ['Expected an object of process type: count, e.g. {"web": 2}.']}
        )
    most = settings.PAAS_MAX_REPLICAS
    errors: dict[str, list[str]] = {}
    for kind, count in counts.items():
        field = f"processes.{kind}"
        if not isinstance(kind, str) or not PROCESS_TYPE.fullmatch(kind) or kind not in known:
            names = ", ".join(sorted(known))
            errors[field] = [f"Unknown process type; this app has: {names}."]
        elif isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= most:
            errors[field] = [f"A count is a whole number from 0 to {most}."]
    if errors:
        raise ValidationError(errors)
    return dict(counts)


def check_can_scale(app: App, environment: Environment) -> None:
    if environment.stopped:
        raise Conflict(
            f"The {environment.name} environment is stopped; start it, then scale it.", "stopped"
        )
    if app.deployments.filter(environment=environment, status__in=ACTIVE_STATUSES).exists():
        # It would start the image that is live now, after the one being deployed.
        raise Conflict(
            f"A deployment to {environment.name} is pending or in progress; scale once it is done.",
            "deployment_in_progress",
        )
