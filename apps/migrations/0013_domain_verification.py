"""Custom domains are verified before they are routed: a token per domain, and when it was
verified. Domains that existed before keep being routed (they count as verified now)."""

from django.db import migrations, models
from django.db.models.functions import Now

from apps.models.app import domain_token


def tokens_for_existing(apps, schema_editor):
    Domain = apps.get_model("apps", "Domain")
    for domain in Domain.objects.all():
        domain.token = domain_token()
        domain.save(update_fields=["token"])
    Domain.objects.update(verified_at=Now())


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0012_volume_docker_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="domain",
            name="token",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="domain",
            name="verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(tokens_for_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="domain",
            name="token",
            field=models.CharField(
                default=domain_token,
                editable=False,
                max_length=64,
            ),
        ),
    ]
