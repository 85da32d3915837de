from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import path


def home(request):
    return HttpResponse(f"stylesheet at {static('site.css')}")


urlpatterns = [path("", home)]
