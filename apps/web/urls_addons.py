"""Add-on routes, included under apps/<name>/addons/ (so every view gets `name`).
Actions are POST-only and end in a verb; the database view lives under <pk>/data/."""

from django.urls import path

from apps.web import addons as views

ADDON = "<int:pk>/"

urlpatterns = [
    path("", views.addons, name="addons"),
    path("attach/", views.attach, name="addon-attach"),
    path(ADDON, views.detail, name="addon-detail"),
    path(ADDON + "status/", views.status, name="addon-status"),
    path(ADDON + "url/", views.reveal, name="addon-reveal"),
    path(ADDON + "restart/", views.restart, name="addon-restart"),
    path(ADDON + "detach/", views.detach, name="addon-detach"),
    path(ADDON + "backups/", views.backup, name="addon-backup"),
    path(ADDON + "backups/<int:backup_id>/restore/", views.restore, name="addon-restore"),
    # the read-only database view
    path(ADDON + "data/", views.database, name="addon-database"),
    path(ADDON + "data/tables/<str:table>/", views.table, name="addon-table"),
    path(ADDON + "data/query/", views.query, name="addon-query"),
]
