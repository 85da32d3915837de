from django.apps import AppConfig


class AppsConfig(AppConfig):
    name = "apps"
    label = "apps"
    verbose_name = "Applications"
    default_auto_field = "django.db.models.BigAutoField"
