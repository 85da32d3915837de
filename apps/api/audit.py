"""/api/v1 an app's audit log: who changed what, when and from where (newest first)."""

from ninja import Router, Schema

from apps.access import app_for
from apps.api.schemas import AppName, Timestamp, WholeNumber, answers
from apps.models import AuditEntry

router = Router(tags=["audit"])

PAGE, PAGE_MAX = 100, 500


class AuditEntryOut(Schema):
    id: int
    created_at: Timestamp
    actor: str
    source: str
    address: str | None
    action: str
    target: str
    details: dict

    @staticmethod
    def resolve_actor(entry) -> str:
        return entry.actor_name


class AuditLogOut(Schema):
    entries: list[AuditEntryOut]
    next: int | None  # pass as `before` for the next, older page


@router.get("/apps/{name}/audit", response=answers(200, AuditLogOut, 400, 404))
def audit_log(request, name: AppName, before: WholeNumber = 0, limit: WholeNumber = PAGE):
    app = app_for(request.auth, name)
    entries = AuditEntry.objects.filter(app=app)
    if before:
        entries = entries.filter(id__lt=before)
    size = max(1, min(limit, PAGE_MAX))
    page = list(entries.order_by("-id")[:size])
    return {"entries": page, "next": page[-1].id if len(page) == size else None}
