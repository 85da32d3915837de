import os

from django.core.wsgi import get_wsgi_application

from paas.celery import freeze_before_fork

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas.settings")
application = get_wsgi_application()

# gunicorn --preload imports this in its master, which then forks the workers: see
# freeze_before_fork for why.
os.register_at_fork(before=freeze_before_fork)
