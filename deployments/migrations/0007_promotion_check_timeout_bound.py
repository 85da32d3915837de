"""The promotion check runs on the request path: its timeout is bounded at 15 s (was 60)."""

import django.core.validators
from django.db import migrations, models

CHECK_TIMEOUT_MAX = 15.0  # deployments.models.promotion.CHECK_TIMEOUT_MAX when written


def clamp_timeouts(apps, schema_editor):
    policies = apps.get_model("deployments", "PromotionPolicy")
    policies.objects.filter(check_timeout__gt=CHECK_TIMEOUT_MAX).update(
        check_timeout=CHECK_TIMEOUT_MAX
    )


class Migration(migrations.Migration):
    dependencies = [("deployments", "0006_log_cap")]

    operations = [
        migrations.RunPython(clamp_timeouts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="check_timeout",
            field=models.FloatField(
                default=5.0,
                help_text="Seconds, at most 15.",
                validators=[
                    django.core.validators.MinValueValidator(0.5),
                    django.core.validators.MaxValueValidator(15.0),
                ],
            ),
        ),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="require_approval",
            field=models.BooleanField(
                default=False,
                help_text="A second person (the owner, or a superuser) approves each promotion.",
            ),
        ),
    ]
