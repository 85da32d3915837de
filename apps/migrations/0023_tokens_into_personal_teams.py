from django.conf import settings
from django.db import migrations


def tokens_into_personal_teams(apps, schema_editor):
    """Before teams a token reached its user's own apps, which migration 0019 moved into
    their personal team: each token now belongs to that team, and reaches what it did."""
    ApiToken = apps.get_model("apps", "ApiToken")
    Team = apps.get_model("apps", "Team")
    Membership = apps.get_model("apps", "Membership")
    for user_id in ApiToken.objects.values_list("user_id", flat=True).distinct():
        team = Team.objects.filter(personal_of_id=user_id).first()
        if team is None:  # a user made while the receiver was not connected (raw loads)
            User = apps.get_model(settings.AUTH_USER_MODEL)
            team = Team.objects.create(
                personal_of_id=user_id, name=User.objects.get(pk=user_id).username
            )
            Membership.objects.create(team=team, user_id=user_id, role="owner")
        ApiToken.objects.filter(user_id=user_id).update(team=team)


class Migration(migrations.Migration):
    # Its own migration: on PostgreSQL the rows it writes leave foreign key checks pending,
    # and no schema change (0022's index, 0024's NOT NULL) may run in that transaction.

    dependencies = [
        ("apps", "0022_team_tokens_protected_env_team_mfa"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(tokens_into_personal_teams, migrations.RunPython.noop),
    ]
