"""Dashboard pages and the partials that refresh them. Thin: look up what the user may see,
call a service, render. The create page is in views_create, actions in views_actions,
settings, env vars and API tokens in views_settings.

Polling partials answer 286 (stop polling) once what they show can no longer change, and
render themselves without their hx-trigger then, so both htmx 2 and 4 stop.
"""

import hashlib
from datetime import UTC, datetime, timedelta
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_required as django_login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django_htmx.http import HttpResponseClientRedirect

from apps.access import (
    CHANGE,
    OWN,
    app_for,
    deployment_for,
    environment_for,
    may,
    readable_app_poll_state,
)
from apps.models import App, Environment, EnvironmentName, app_list_count, app_list_rows
from apps.web.pipeline_panel import pipeline_context
from apps.web.switcher import chosen_team
from deployments import services
from deployments.models import WEB, Deployment, LogLine, Status
from deployments.models.pipeline import planned_steps
from deployments.services import formation, log_store
from deployments.services.log_store import LogFilter

STOP_POLLING = 286
LOG_PAGE = 500  # log lines per poll
LOG_FIRST_PAGE = 2000  # log lines rendered with the page
# A log line may still be written just after the status turns final ("Live at …" follows
# mark_succeeded), so the log poller keeps going this long after the end.
LOG_GRACE = timedelta(seconds=3)
RUNTIME_PAGE = 100
HISTORY_LENGTH = 50
APPS_PER_PAGE = 25  # the apps list


# --- access ---------------------------------------------------------------------------------


def login_required(view):
    """Django's, except that an htmx request from a tab whose session ended is sent to the
    sign-in page as a whole page rather than having it swapped into a fragment."""
    checked = django_login_required(view)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.htmx and not request.user.is_authenticated:
            next_url = request.htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(redirect_to_login(next_url).url)
        return checked(request, *args, **kwargs)

    return wrapper


def _cursor(request, name: str) -> int | None:
    """A non-negative integer query parameter; None when absent. Garbage is a 400."""
    raw = request.GET.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit():
        raise ValueError(name)
    return int(raw)


def _stop_if(request, done: bool, status: int = 200) -> int:
    return STOP_POLLING if done and request.htmx else status


# --- what templates show about a deployment ---------------------------------------------------


def duration_text(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def pipeline_steps(d: Deployment) -> list[dict]:
    """The steps this deployment runs, each done, current, failed or todo."""
    names = planned_steps(d.trigger, bool(d.release_command or d.app.release_command))
    reached = next((i for i, (name, _) in enumerate(names) if name == d.step), -1)
    steps = []
    for i, (name, label) in enumerate(names):
        if d.status == Status.SUCCEEDED:
            state = "done"
        elif d.status in (Status.BUILDING, Status.STARTING):
            at = max(reached, 0)
            state = "done" if i < at else "current" if i == at else "todo"
        elif d.status in (Status.FAILED, Status.CANCELLED) and reached >= 0:
            state = "done" if i < reached else "failed" if i == reached else "todo"
        else:
            state = "todo"
        steps.append({"name": name, "label": label, "state": state})
    return steps


def decorate(d: Deployment, now=None) -> Deployment:
    """Attach what the templates show: elapsed time, the steps, the phase in words."""
    now = now or timezone.now()
    start = d.started_at or d.created_at
    d.ui_elapsed = duration_text((d.finished_at or now) - start)
    d.ui_duration = duration_text(d.duration) if d.duration else ""
    d.ui_steps = pipeline_steps(d)
    d.ui_short_sha = d.commit_sha[:7]
    d.ui_number = str(d.number)  # for element ids built in templates
    d.ui_ago = ago_text(d.created_at, now)
    current = next((s for s in d.ui_steps if s["state"] in ("current", "failed")), None)
    d.ui_phase = {
        Status.PENDING: "Queued, waiting for a worker",
        Status.SUCCEEDED: "Deployed",
        Status.SUPERSEDED: "Superseded by a newer deployment",
        Status.CANCELLED: "Cancelled",
    }.get(d.status, current["label"] if current else d.get_status_display())
    if d.status == Status.FAILED:
        d.ui_phase = f"Failed at: {current['label']}" if current else "Failed"
    return d


def ago_text(moment, now) -> str:
    return "just now" if now - moment < timedelta(minutes=1) else f"{timesince(moment, now)} ago"


# --- home -----------------------------------------------------------------------------------


def _home_context(request) -> dict:
    """The apps the user sees, only the header's chosen team's when one is chosen, by name,
    APPS_PER_PAGE to a page (?page=N; Django's Paginator.get_page: a number out of range
    shows the last page, what is no number the first). One page of every app rendered 100
    apps each time the list polled: 16 requests/s with 100 apps, 86 with pages of 25
    (bench/run --hundred-apps)."""
    team = chosen_team(request)
    listed = _ListedApps(request.user, team.pk if team else None)
    page = Paginator(listed, APPS_PER_PAGE).get_page(request.GET.get("page"))
    now = timezone.now()
    links = _RowLinks()
    apps = list(page.object_list)
    for app in apps:
        name, production_host = app["name"], app["production_host"]
        app["ui_href"] = links.app(name)
        app["ui_live"] = app["production_live_id"] is not None
        # Environment's own rule for its address, from the host label the row read (and the
        # app's name, which that rule falls back to for an environment with no label).
        production = Environment(
            app=App(name=name), name=EnvironmentName.PRODUCTION, host_label=production_host
        )
        app["ui_url"] = production.url if production_host is not None else ""
        app["latest"] = _latest(app, links, now)
    return {"apps": apps, "page": page, "chosen_team": team}


class _ListedApps:
    """What Paginator pages: the count and one page of rows, one statement each
    (apps/models/app_list.py)."""

    def __init__(self, user, team_id: int | None):
        self.user, self.team_id = user, team_id

    def count(self) -> int:
        return app_list_count(self.user, self.team_id)

    def __getitem__(self, page: slice) -> list[dict]:
        return app_list_rows(self.user, self.team_id, page.start, page.stop - page.start)


def _latest(app: dict, links, now) -> dict | None:
    """What the row shows of the app's newest deployment: number, status, age, link."""
    if app["latest_number"] is None:
        return None
    number, created_at = app["latest_number"], app["latest_created_at"]
    return {
        "number": number,
        "status": app["latest_status"],
        "created_at": created_at,
        "ui_ago": ago_text(created_at, now),
        "ui_href": links.deployment(app["name"], number),
    }


class _RowLinks:
    """The list's two links per row, each reversed once a page: a reverse() per row and
    link was a tenth of the page's time. App names are DNS labels (validators.py), so a
    name goes into the path as it is."""

    NAME, NUMBER = "app-name-placeholder", "1234567890"

    def __init__(self):
        self._app = reverse("app-detail", args=[self.NAME])
        self._deployment = reverse("deployment-detail", args=[self.NAME, int(self.NUMBER)])

    def app(self, name: str) -> str:
        return self._app.replace(self.NAME, name, 1)

    def deployment(self, name: str, number: int) -> str:
        # The number first: a name may hold its digits, the placeholder name none.
        return self._deployment.replace(self.NUMBER, str(number), 1).replace(self.NAME, name, 1)


@login_required
def home(request):
    return render(request, "apps/home.html", _home_context(request))


@login_required
def home_apps(request):
    return render(request, "apps/_app_list.html", _home_context(request))


# --- the app page ---------------------------------------------------------------------------


def _environments(app: App) -> list[Environment]:
    envs = list(app.environments.select_related("live_deployment"))
    for env in envs:  # the formation form: web's count is `replicas`, then the other types
        kinds = sorted(k for k in formation.process_commands(env) if k != WEB)
        env.ui_processes = [(kind, env.process_count(kind)) for kind in kinds]
        env.ui_max_replicas = settings.PAAS_MAX_REPLICAS
    return sorted(envs, key=lambda e: (e.position, e.pk))


def _status_context(app: App, envs=None, latest=None) -> dict:
    """The status strip, and a fingerprint of everything the other panels show: when it
    changes, the strip's poll tells them to refresh (an HX-Trigger event). The caller may
    pass the environments (_environments) and latest (number, status) it already has."""
    envs = _environments(app) if envs is None else envs
    latest = _latest_state(app.pk) if latest is None else latest
    states = [(e.name, e.live_deployment_id, e.stopped) for e in envs]
    return {
        "app": app,
        "envs": envs,
        "seen": latest[0],
        "fingerprint": _fingerprint(app.status, latest, states),
    }


def _latest_state(app_id: int) -> tuple[int, str]:
    """The newest deployment's (number, status); (0, "") before the first."""
    newest = Deployment.objects.filter(app_id=app_id).order_by("-number")
    return newest.values_list("number", "status").first() or (0, "")


def _fingerprint(app_status: str, latest: tuple[int, str], env_states) -> str:
    """env_states: (name, live_deployment_id, stopped) of each environment, in page order."""
    parts = [app_status, str(latest[0]), latest[1]]
    parts += [f"{name}:{live_id}:{stopped}" for name, live_id, stopped in env_states]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _history_context(app: App, envs=None) -> dict:
    envs = _environments(app) if envs is None else envs
    live_ids = {e.live_deployment_id for e in envs if e.live_deployment_id}
    now = timezone.now()
    deployments = list(
        app.deployments.select_related("environment", "requested_by", "source_deployment")[
            :HISTORY_LENGTH
        ]
    )
    for d in deployments:
        decorate(d, now)
        d.ui_live = d.pk in live_ids
        d.ui_can_rollback = d.status == Status.SUCCEEDED and bool(d.image_id) and not d.ui_live
    return {"app": app, "deployments": deployments}


def _current_context(app: App) -> dict:
    latest = app.deployments.select_related("environment", "requested_by").first()
    return {"app": app, **(_log_context(latest) if latest else {"d": None})}


def _log_context(d: Deployment) -> dict:
    lines = LogLine.page(d, after=0, limit=LOG_FIRST_PAGE)
    cursor = lines[-1].id if lines else 0
    return {"d": decorate(d), "lines": lines, "cursor": cursor, "log_done": _log_done(d, lines)}


def _log_done(d: Deployment, lines) -> bool:
    """Nothing more will be written: final, past the grace period, and this page not full."""
    if not d.is_final or len(lines) >= LOG_PAGE:
        return False
    return d.finished_at is None or timezone.now() - d.finished_at > LOG_GRACE


@login_required
def app_detail(request, name):
    app = app_for(request.user, name)
    envs = _environments(app)  # the strip, the environments and the history: read once
    current = _current_context(app)
    latest = (current["d"].number, current["d"].status) if current["d"] else (0, "")
    context = {**_status_context(app, envs, latest), **_history_context(app, envs), **current}
    context["is_owner"] = may(request.user, app, OWN)
    context["can_change"] = may(request.user, app, CHANGE)
    context.update(pipeline_context(app))
    return render(request, "apps/app_detail.html", context)


@login_required
def app_pipeline(request, name):
    app = app_for(request.user, name)
    context = {"app": app, "can_change": may(request.user, app, CHANGE)}
    return render(request, "apps/_pipeline.html", {**context, **pipeline_context(app)})


@login_required
def app_status(request, name):
    """The status strip's poll. Nothing changed: 204, so htmx leaves the strip (an aria-live
    region) alone. Else the new strip, and HX-Trigger events that refresh the other panels."""
    _, app_status, latest, env_states = readable_app_poll_state(request.user, name)
    fingerprint = _fingerprint(app_status, latest, env_states)
    seen = latest[0]
    events = []
    if request.GET.get("seen", str(seen)) != str(seen):
        events.append("new-deployment")
    if request.GET.get("fp", fingerprint) != fingerprint:
        events.append("app-changed")
    if request.htmx and "fp" in request.GET and not events:
        return HttpResponse(status=204)
    app = app_for(request.user, name)
    response = render(request, "apps/_app_status.html", _status_context(app, latest=latest))
    if events:
        response["HX-Trigger"] = ", ".join(events)
    return response


@login_required
def app_environments(request, name):
    app = app_for(request.user, name)
    return render(request, "apps/_environments.html", _status_context(app))


@login_required
def app_history(request, name):
    app = app_for(request.user, name)
    return render(request, "apps/_deployments.html", _history_context(app))


@login_required
def app_current(request, name):
    app = app_for(request.user, name)
    return render(request, "apps/_current.html", _current_context(app))


# --- one deployment -------------------------------------------------------------------------


@login_required
def deployment_detail(request, name, number):
    app = app_for(request.user, name)
    d = deployment_for(app, number)
    live_ids = {e.live_deployment_id for e in app.environments.all()}
    d.ui_live = d.pk in live_ids
    d.ui_can_rollback = d.status == Status.SUCCEEDED and bool(d.image_id) and not d.ui_live
    return render(request, "apps/deployment_detail.html", {"app": app, **_log_context(d)})


@login_required
def deployment_panel(request, name, number):
    """Step and elapsed time; polled while the deployment runs."""
    app = app_for(request.user, name)
    d = decorate(deployment_for(app, number))
    # The screen-reader announcement is refreshed only when the step or status moved.
    announce = request.GET.get("seen", f"{d.status}:{d.step}") != f"{d.status}:{d.step}"
    context = {"app": app, "d": d, "announce": announce}
    status = _stop_if(request, d.is_final)
    return render(request, "apps/_deployment_panel.html", context, status=status)


@login_required
def deployment_log(request, name, number):
    """The log lines after ?after=<cursor>, appended out of band, and the next poller."""
    app = app_for(request.user, name)
    d = deployment_for(app, number)  # read before the lines: see _log_done
    try:
        after = _cursor(request, "after") or 0
    except ValueError:
        return HttpResponseBadRequest("after: expected a non-negative whole number.")
    lines = LogLine.page(d, after=after, limit=LOG_PAGE)
    done = _log_done(d, lines)
    context = {"app": app, "d": d, "lines": lines, "cursor": lines[-1].id if lines else after}
    context["log_done"] = done
    return render(request, "apps/_log_update.html", context, status=_stop_if(request, done))


# --- runtime log ----------------------------------------------------------------------------


def _runtime_lines(raw) -> list[dict]:
    return [
        {
            "ns": line.ns,
            "text": line.text,
            "at": datetime.fromtimestamp(line.ns / 1e9, tz=UTC),
            "source": f"{line.process}.{line.replica}",
            "stderr": line.stream == "stderr",
        }
        for line in raw
    ]


@login_required
def runtime_log(request, name, environment):
    """What the environment's containers printed, from the store: the latest page,
    ?before=<ns> for older lines, or ?since=<ns> for the live tail (polled); ?process=
    narrows it to one process type. The output may hold secrets: CHANGE."""
    app = app_for(request.user, name, to=CHANGE)
    env = environment_for(app, environment)
    try:
        since, before = _cursor(request, "since"), _cursor(request, "before")
    except ValueError:
        return HttpResponseBadRequest("since/before: expected nanoseconds since the epoch.")
    process = request.GET.get("process", "")[:64]
    context = {"app": app, "env": env, "live": bool(env.live_deployment_id), "process": process}
    filters = LogFilter(process=process)
    if before is not None:
        return _runtime_older(request, env, before, filters, context)
    if since is not None:
        return _runtime_tail(request, env, since, filters, context)
    lines = _runtime_lines(
        services.runtime_logs(env, since_ns=0, limit=RUNTIME_PAGE, filters=filters)
    )
    # The tabs are the whole section's; the tail, polled every 2 s, renders none.
    context.update(envs=_environments(app), processes=_logged_processes(env))
    context.update(
        lines=lines,
        since=lines[-1]["ns"] if lines else 0,
        before=lines[0]["ns"] if lines else 0,
        more=len(lines) >= RUNTIME_PAGE,
    )
    return render(request, "apps/_runtime_log.html", context)


def _logged_processes(env) -> list[str]:
    """The process types to filter by: the live deployment's, web first."""
    live = env.live_deployment
    kinds = sorted(live.processes) if live else []
    return sorted(kinds, key=lambda kind: kind != WEB)


def _runtime_tail(request, env, since, filters, context):
    raw = services.runtime_logs(env, since_ns=since, limit=RUNTIME_PAGE, filters=filters)
    lines = _runtime_lines(raw)
    context.update(lines=lines, since=lines[-1]["ns"] if lines else since, tail=True)
    # Nothing deployed here any more (the app is going away): nothing will ever come.
    return render(
        request, "apps/_runtime_update.html", context, status=_stop_if(request, not context["live"])
    )


def _runtime_older(request, env, before, filters, context):
    lines = _runtime_lines(log_store.page_before(env, before, RUNTIME_PAGE + 1, filters))
    more = len(lines) > RUNTIME_PAGE
    lines = lines[-RUNTIME_PAGE:]
    context.update(lines=lines, before=lines[0]["ns"] if lines else before, more=more, older=True)
    return render(request, "apps/_runtime_update.html", context)
