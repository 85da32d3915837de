from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("deployments.api_urls")),
    path("hooks/", include("deployments.webhook_urls")),
    path("apps/<str:name>/notifications/", include("apps.urls_notifications")),
    path("apps/<str:name>/addons/", include("apps.urls_addons")),
    path("", include("apps.urls")),
]
