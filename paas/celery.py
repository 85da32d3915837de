import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")

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
