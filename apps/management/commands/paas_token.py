from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for a user (shown once; only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label to recognise the token by.")

    def handle(self, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called {username!r}.")
        _, raw = ApiToken.issue(user, name=name)
        self.stdout.write(raw)
