from django.urls import path

from deployments import webhooks

urlpatterns = [
    path("<str:provider>/<str:name>", webhooks.receive, name="webhook"),
]
