from django.apps import AppConfig


class AppsConfig(AppConfig):
    name = "apps"
    label = "apps"
    verbose_name = "Applications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps import two_factor  # noqa: F401  # local import: its receivers need models loaded
