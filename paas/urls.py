from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("apps.api.urls")),
    path("hooks/", include("apps.hooks.urls")),
    path("apps/<str:name>/notifications/", include("apps.web.urls_notifications")),
    path("apps/<str:name>/addons/", include("apps.web.urls_addons")),
    path("", include("apps.web.urls")),
]
