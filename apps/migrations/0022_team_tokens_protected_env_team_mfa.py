import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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
    dependencies = [
        ("apps", "0021_audit_team"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="envvar",
            name="protected",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="team",
            name="require_mfa",
            field=models.BooleanField(
                default=False,
                help_text="Every member must sign in with a second factor to see the team's apps.",
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="team",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to="apps.team",
            ),
        ),
        migrations.RunPython(tokens_into_personal_teams, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="team",
            field=models.ForeignKey(
                help_text="The one team whose apps it reaches.",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to="apps.team",
            ),
        ),
    ]
