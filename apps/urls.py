from django.urls import path

from apps import views

urlpatterns = [
    path("", views.home, name="home"),
    path("apps/<str:name>/", views.app_detail, name="app-detail"),
]
