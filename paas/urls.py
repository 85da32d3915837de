from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("deployments.api_urls")),
    path("hooks/", include("deployments.webhook_urls")),
    path("", include("apps.urls")),
]
