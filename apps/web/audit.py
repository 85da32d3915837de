"""An app's audit log page: who changed what, when and from where."""

from django.shortcuts import render

from apps.access import app_for
from apps.models import AuditEntry
from apps.web.pages import login_required

SHOWN = 200


@login_required
def audit_log(request, name):
    app = app_for(request.user, name)
    entries = AuditEntry.objects.filter(app=app).order_by("-id")[:SHOWN]
    return render(request, "apps/audit.html", {"app": app, "entries": entries, "shown": SHOWN})
