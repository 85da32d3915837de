"""The app page's "Run a command" card: a command box, the live output of the latest run
(polled while it runs), a kill button, the history of runs, and the scheduled jobs (add,
toggle, delete, their last run). Thin: every change goes through deployments.services.runs.

Every action answers with the whole card re-rendered (htmx), or a redirect to the app page
with a message (a plain form post).
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.access import CHANGE, app_for
from apps.web.pages import STOP_POLLING, login_required
from deployments.models import RunLogLine
from deployments.services import ServiceError
from deployments.services import runs as service

LOG_PAGE = 500
HISTORY = 10


def _card_context(app, **extra) -> dict:
    history = service.runs_of(app, HISTORY)
    latest = history[0] if history else None
    lines = RunLogLine.page(latest, limit=LOG_PAGE * 4) if latest else []
    return {
        "app": app,
        "environments": app.environment_choices(),
        "runs": history,
        "latest": latest,
        "lines": lines,
        "cursor": lines[-1].id if lines else 0,
        "jobs": service.jobs_of(app),
        **extra,
    }


def _card(request, app, status: int = 200, **extra):
    return render(request, "apps/_runs.html", _card_context(app, **extra), status=status)


def _answer(request, app, message="", error="", errors=None, form="", status=400):
    """`form` names the form the field errors belong to (run or job); `status` is a
    refusal's (htmx swaps the card in for 400, 409 and 503 too)."""
    if request.htmx:
        status = status if (error or errors) else 200
        extra = {"message": message, "error": error, "errors": errors or {}, "form": form}
        return _card(request, app, status, **extra)
    if error or errors:
        messages.error(request, error or _joined(errors))
    elif message:
        messages.success(request, message)
    return redirect("app-detail", app.name)


def _joined(errors: dict) -> str:
    return " ".join(f"{field}: {' '.join(texts)}" for field, texts in errors.items())


@login_required
def runs_card(request, name):
    return _card(request, app_for(request.user, name, to=CHANGE))


@login_required
@require_POST
def run_start(request, name):
    app = app_for(request.user, name, to=CHANGE)
    environment = request.POST.get("environment", "production")
    try:
        run = service.start_run(
            app, environment, request.POST.get("command", ""), requested_by=request.user
        )
    except ValidationError as exc:
        return _answer(request, app, errors=exc.message_dict, form="run")
    except ServiceError as exc:
        return _answer(request, app, error=exc.message, status=exc.status)
    return _answer(request, app, message=f"Run {run.pk} is queued.")


@login_required
def run_output(request, name, run_id):
    """The lines after ?after=, appended out of band, the status, and the next poller;
    286 (stop polling) once the run is over and every line is shown."""
    app = app_for(request.user, name, to=CHANGE)
    run = service.run_for(app, run_id)  # read before the lines: nothing comes after final
    raw = request.GET.get("after", "0")
    if not raw.isdigit():
        return HttpResponseBadRequest("after: expected a non-negative whole number.")
    lines = RunLogLine.page(run, after=int(raw), limit=LOG_PAGE)
    done = run.is_final and len(lines) < LOG_PAGE
    context = {"app": app, "latest": run, "lines": lines, "done": done}
    context["cursor"] = lines[-1].id if lines else int(raw)
    status = STOP_POLLING if done and request.htmx else 200
    return render(request, "apps/_run_output_update.html", context, status=status)


@login_required
@require_POST
def run_cancel(request, name, run_id):
    app = app_for(request.user, name, to=CHANGE)
    try:
        run = service.cancel_run(service.run_for(app, run_id))
    except ServiceError as exc:
        return _answer(request, app, error=exc.message, status=exc.status)
    text = "Cancelled." if run.is_final else "Killing it…"
    return _answer(request, app, message=f"Run {run.pk}: {text}")


@login_required
@require_POST
def job_add(request, name):
    app = app_for(request.user, name, to=CHANGE)
    data = {
        key: request.POST.get(key, "").strip()
        for key in ("environment", "name", "schedule", "command")
    }
    try:
        job = service.create_job(app, {**data, "enabled": True})
    except ValidationError as exc:
        return _answer(request, app, errors=exc.message_dict, form="job")
    except ServiceError as exc:
        return _answer(request, app, error=exc.message, status=exc.status)
    return _answer(request, app, message=f"Scheduled “{job.name}” ({job.schedule}, UTC).")


@login_required
@require_POST
def job_toggle(request, name, job_id):
    app = app_for(request.user, name, to=CHANGE)
    job = service.job_for(app, job_id)
    service.set_job_enabled(job, not job.enabled)
    state = "on" if job.enabled else "off"
    return _answer(request, app, message=f"“{job.name}” is {state}.")


@login_required
@require_POST
def job_delete(request, name, job_id):
    app = app_for(request.user, name, to=CHANGE)
    job = service.job_for(app, job_id)
    service.delete_job(job)
    return _answer(request, app, message=f"Deleted “{job.name}”; its runs stay in the history.")
