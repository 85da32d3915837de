from django.urls import path

from apps.hooks import views as webhooks

urlpatterns = [
    path("<str:provider>/<str:name>", webhooks.receive, name="webhook"),
]
