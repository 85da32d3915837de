"""Under /apps/<name>/notifications/: the app's notification targets, and (beside them,
to keep to one include) its resource panel."""

from django.urls import path

from apps.web import notifications as views

urlpatterns = [
    path("", views.app_notifications, name="app-notifications"),
    path("<int:target_id>/delete/", views.notification_delete, name="app-notification-delete"),
    path("<int:target_id>/reveal/", views.notification_reveal, name="app-notification-reveal"),
    path("resources/", views.app_resources, name="app-resources"),
]
