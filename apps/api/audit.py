"""/api/v1 audit logs: an app's, and a team's for its owners — who changed what, when, from
where and with which role on the team (newest first)."""

from django.http import Http404
from ninja import Field, Router, Schema

from apps.access import app_for, team_for
from apps.api.schemas import AppName, Id, Timestamp, WholeNumber, answers
from apps.models import AuditEntry, Role

router = Router(tags=["audit"])

PAGE, PAGE_MAX = 100, 500


class AuditEntryOut(Schema):
    id: int
    created_at: Timestamp
    actor: str
    source: str
    address: str | None
    action: str
    app: str = Field(description="The app's name (empty for a team's own actions).")
    actor_role: str = Field(description="The actor's role on the team then (empty: none).")
    target: str
    details: dict

    @staticmethod
    def resolve_app(entry) -> str:
        return entry.app_name

    @staticmethod
    def resolve_actor(entry) -> str:
        return entry.actor_name


class AuditLogOut(Schema):
    entries: list[AuditEntryOut]
    next: int | None  # pass as `before` for the next, older page


@router.get("/apps/{name}/audit", response=answers(200, AuditLogOut, 400, 404))
def audit_log(request, name: AppName, before: WholeNumber = 0, limit: WholeNumber = PAGE):
    app = app_for(request.auth, name)
    return _page(AuditEntry.objects.filter(app=app), before, limit)


@router.get("/teams/{int:team_id}/audit", response=answers(200, AuditLogOut, 400, 404))
def team_audit_log(request, team_id: Id, before: WholeNumber = 0, limit: WholeNumber = PAGE):
    """Every entry of the team's apps and of the team itself: for its owners (anyone else:
    404, as for what a role may not do to an app)."""
    team = team_for(request.auth, team_id)
    if team.role_of(request.auth) != Role.OWNER:
        raise Http404("not an owner of the team")
    return _page(AuditEntry.objects.filter(team=team), before, limit)


def _page(entries, before: int, limit: int) -> dict:
    if before:
        entries = entries.filter(id__lt=before)
    size = max(1, min(limit, PAGE_MAX))
    page = list(entries.order_by("-id")[:size])
    return {"entries": page, "next": page[-1].id if len(page) == size else None}
