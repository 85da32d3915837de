import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


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
    ]
