"""Volumes keep their engine name on the row. New ones are named by their id; the ones made
before keep the name composed then (<instance>-<app>-<environment>-<volume>), so no data
already in a volume is orphaned."""

from django.conf import settings
from django.db import migrations, models


def keep_composed_names(apps, schema_editor):
    Volume = apps.get_model("apps", "Volume")
    for volume in Volume.objects.filter(docker_name="").select_related("environment__app"):
        env = volume.environment
        volume.docker_name = f"{settings.PAAS_INSTANCE}-{env.app.name}-{env.name}-{volume.name}"
        volume.save(update_fields=["docker_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0011_audit_log"),
    ]

    operations = [
        migrations.AddField(
            model_name="volume",
            name="docker_name",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.RunPython(keep_composed_names, migrations.RunPython.noop),
    ]
