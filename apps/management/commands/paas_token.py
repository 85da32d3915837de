from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.models import ApiToken, Team
from apps.models.tokens import TokenScope, expiry_from


class Command(BaseCommand):
    help = "Print a new API token for a user (shown once; only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by.")
        parser.add_argument(
            "--scope",
            default=TokenScope.WRITE,
            help="read (GET only, no secret values) or write (everything; the default).",
        )
        parser.add_argument(
            "--team",
            type=int,
            default=None,
            help="The id of the team whose apps it reaches (default: the user's personal team).",
        )
        parser.add_argument(
            "--expires",
            default=None,
            help="Days from now, or an ISO 8601 date-time with its time zone (default: never).",
        )

    def handle(self, username, name, scope, expires, team, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username!r}.")
        team = self._team_of(user, team)
        try:
            _, raw = ApiToken.issue(
                user, name=name, scope=scope, expires_at=expiry_from(expires), team=team
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(raw)

    def _team_of(self, user, team_id: int | None) -> Team | None:
        if team_id is None:
            return None
        team = Team.reached_by(user).filter(pk=team_id).first()
        if team is None:
            raise CommandError(f"{user.get_username()} is in no team {team_id}.")
        return team
