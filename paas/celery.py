import gc
import os

import click
from celery import Celery, bootsteps
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


class BeatThread(bootsteps.StartStopStep):
    """`celery worker --beat-thread SCHEDULE_FILE` (scripts/lib.sh's exec_worker): beat, which
    sends CELERY_BEAT_SCHEDULE's tasks, as a thread of the worker's main process.

    A process of its own idled in 42 MiB (PSS), the thread costs the worker a few
    (bench/run --memory). A thread, not Celery's `-B`: that forks beat as a process, which a
    SIGKILL of the worker leaves running, so the worker started again in its place would
    run a second beat. A thread ends with its process, and comes back with it. After the
    pool, so that the pool's first children are forked before the thread exists."""

    label = "BeatThread"
    conditional = True
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker, beat_thread=None, **options):
        self.enabled = bool(beat_thread)
        self.schedule_file = beat_thread
        super().__init__(worker, **options)

    def create(self, worker):
        from celery.beat import EmbeddedService

        return EmbeddedService(worker.app, thread=True, schedule_filename=self.schedule_file)


app.user_options["worker"].add(
    click.Option(
        ["--beat-thread"],
        metavar="SCHEDULE_FILE",
        default=None,
        help="Also run beat, in a thread of this worker, keeping its schedule in this file.",
    )
)
app.steps["worker"].add(BeatThread)
