from django.contrib import admin
from django.urls import include, path

from apps.accounts import admin_login
from apps.web import metrics

urlpatterns = [
    # Before the admin's own: its login would be a second, unlimited way to guess passwords.
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("apps.api.urls")),
    path("hooks/", include("apps.hooks.urls")),
    path("apps/<str:name>/notifications/", include("apps.web.urls_notifications")),
    path("apps/<str:name>/addons/", include("apps.web.urls_addons")),
    path("apps/<str:name>/drains/", include("apps.web.urls_log_drains")),
    path("apps/<str:name>/metrics/", metrics.app_metrics, name="app-metrics"),
    # For the operators' Prometheus (apps/web/metrics.py says who may read it).
    path("metrics", metrics.prometheus, name="prometheus"),
    path("", include("apps.web.urls")),
]
