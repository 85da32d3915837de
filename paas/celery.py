import gc
import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")


def freeze_before_fork() -> None:
    """Before os.fork(): collect, then move every object left out of the collector's reach.

    gunicorn's master (--preload) and Celery's main process fork their workers from a
    loaded parent, whose pages the children share copy-on-write until they write to them.
    A collection in a child writes to each object it visits (its gc header), and so copies
    nearly every page of the parent's heap into the child; frozen objects are never
    visited (the gc module's documentation advises this for a fork without exec). With it,
    the worker's pool child that ran the warden's rounds kept 29 MiB of its own instead of
    68 (bench/run --memory). Registered only by those two parents (worker_init below,
    paas/wsgi.py), not by every process that imports Django: a test process spawning
    programs would collect at each spawn and never free what it froze. The cost: a cycle
    among frozen objects is never collected, and the parents make few after they start."""
    gc.collect()
    gc.freeze()


@worker_init.connect
def _freeze_before_the_pool_forks(**kwargs) -> None:
    os.register_at_fork(before=freeze_before_fork)


app = Celery("paas")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

BUILD_TASK = "deployments.tasks.build_deployment"


def route_builds(name, args, kwargs, options, task=None, **extra):
    """A deployment's build goes to PAAS_BUILD_QUEUE, which only build nodes consume (read
    when it is sent, so a settings override holds); every other task, to the default one."""
    from django.conf import settings

    if name == BUILD_TASK and settings.PAAS_BUILD_QUEUE:
        return {"queue": settings.PAAS_BUILD_QUEUE}
    return None


app.conf.task_routes = (route_builds,)


def _beat_app() -> Celery:
    """The app `celery beat` runs (scripts/lib.sh's exec_beat: -A paas.celery:beat_app).

    Beat only sends CELERY_BEAT_SCHEDULE's tasks, by name: it needs the settings, not
    Django's apps and models nor the task modules, which the Django fix-up and autodiscovery
    would load into it as into the worker. Without them beat idles in 42 MiB (PSS) instead
    of 105 (bench/run --memory). Not the current app, so that nothing else picks it up by
    accident; the same configuration and routes as `app`. A task's own options (`expires`)
    do not reach beat's messages: CELERY_BEAT_SCHEDULE's entries carry theirs."""
    beat = Celery("paas", fixups=(), set_as_current=False)
    beat.config_from_object("django.conf:settings", namespace="CELERY")
    beat.conf.task_routes = (route_builds,)
    return beat


def __getattr__(name: str):
    # Made when asked for: the web processes and the worker never build it.
    if name == "beat_app":
        globals()["beat_app"] = _beat_app()
        return globals()["beat_app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
