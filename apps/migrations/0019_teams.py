"""Teams: every user gets a personal team where they are the owner, and every app moves
into its owner's personal team."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import Q


def personal_teams(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Team = apps.get_model("apps", "Team")
    Membership = apps.get_model("apps", "Membership")
    App = apps.get_model("apps", "App")
    for user in User.objects.all():
        team = Team.objects.create(name=user.username, personal_of=user)
        Membership.objects.create(team=team, user=user, role="owner")
        App.objects.filter(owner=user).update(team=team)


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0018_token_scopes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Team",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=63)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "personal_of",
                    models.OneToOneField(
                        blank=True,
                        help_text="Set for a user's personal team, made with the user.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="personal_team",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["name", "pk"]},
        ),
        migrations.CreateModel(
            name="Membership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "role",
                    models.CharField(
                        choices=[
                            ("owner", "Owner"),
                            ("admin", "Admin"),
                            ("developer", "Developer"),
                            ("viewer", "Viewer"),
                        ],
                        default="developer",
                        max_length=16,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="apps.team",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["team", "user__username"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("team", "user"), name="one_membership_per_team"
                    ),
                    models.CheckConstraint(
                        condition=Q(role__in=["owner", "admin", "developer", "viewer"]),
                        name="membership_role_known",
                    ),
                ],
            },
        ),
        migrations.AddField(
            model_name="app",
            name="team",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.RESTRICT,
                related_name="apps",
                to="apps.team",
            ),
        ),
        migrations.AlterField(
            model_name="app",
            name="owner",
            field=models.ForeignKey(
                help_text="Who made it: their provider token clones and builds it.",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="apps",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(personal_teams, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="app",
            name="team",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.RESTRICT,
                related_name="apps",
                to="apps.team",
            ),
        ),
    ]
