"""Environments are rows with free names: each keeps its host label in a unique column (the
proof that no environment answers on another's host) and a position (production first)."""

import django.utils.timezone
from django.db import migrations, models

import apps.validators


def fill_host_labels(apps, schema_editor):
    """Today's rows: production answers on <app>, staging on <app>-staging."""
    Environment = apps.get_model("apps", "Environment")
    for env in Environment.objects.select_related("app"):
        production = env.name == "production"
        env.host_label = env.app.name if production else f"{env.app.name}-{env.name}"
        env.position = 0 if production else 1
        env.save(update_fields=["host_label", "position"])


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0014_auto_rollback_and_alerts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="environment",
            name="name",
            field=models.CharField(
                max_length=30, validators=[apps.validators.validate_environment_name]
            ),
        ),
        migrations.AlterField(
            model_name="app",
            name="webhook_environment",
            field=models.CharField(
                default="production",
                help_text="Where a push to the app's branch deploys.",
                max_length=30,
            ),
        ),
        migrations.AddField(
            model_name="environment",
            name="host_label",
            field=models.CharField(editable=False, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="position",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="environment",
            name="cleanup_requested_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="environment",
            name="created_at",
            field=models.DateTimeField(default=django.utils.timezone.now, editable=False),
        ),
        migrations.RunPython(fill_host_labels, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="environment",
            name="host_label",
            field=models.CharField(editable=False, max_length=100, unique=True),
        ),
        migrations.AlterModelOptions(
            name="environment",
            options={"ordering": ["app__name", "position", "id"]},
        ),
    ]
