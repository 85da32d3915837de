from django.http import JsonResponse
from django.urls import path
from notes.models import Note


def index(request):
    """What the release created and how much the worker wrote."""
    return JsonResponse(
        {
            "release": list(Note.objects.filter(source="release").values_list("text", flat=True)),
            "worker": Note.objects.filter(source="worker").count(),
        }
    )


urlpatterns = [path("", index)]
