"""Under /apps/<name>/drains/: the app's log drains (a card on the settings page)."""

from django.urls import path

from apps.web import log_drains as views

urlpatterns = [
    path("", views.app_drains, name="app-drains"),
    path("<int:drain_id>/delete/", views.drain_delete, name="app-drain-delete"),
]
