"""The dashboard's URLs and the benchmark's baseline, /bench-ok: a view that does no work of
its own, served by the same gunicorn and middleware as the pages (bench only: production's
URL conf never has it)."""

from django.http import HttpResponse
from django.urls import include, path


def ok(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench-ok", ok, name="bench-ok"),
    path("", include("paas.urls")),
]
