"""Pipelines: stages as rows, gates per step (named by the environment promoted into), and
each promotion request naming its step. Today's data: every policy guards the step into
production, every request was staging → production."""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q


def _env(Environment, app_id, name):
    return Environment.objects.filter(app_id=app_id, name=name).first()


def steps_of_today(apps, schema_editor):
    Environment = apps.get_model("apps", "Environment")
    PromotionPolicy = apps.get_model("deployments", "PromotionPolicy")
    PromotionRequest = apps.get_model("deployments", "PromotionRequest")
    for policy in PromotionPolicy.objects.all():
        policy.environment = _env(Environment, policy.app_id, "production")
        policy.save(update_fields=["environment"])
    for request in PromotionRequest.objects.all():
        source = _env(Environment, request.app_id, "staging")
        if source is None:  # staging was deleted: its requests went with it
            request.delete()
            continue
        request.source_environment = source
        request.target_environment = _env(Environment, request.app_id, "production")
        request.save(update_fields=["source_environment", "target_environment"])


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0016_promotion_events"),
        ("deployments", "0011_promotion_ci_gate"),
    ]

    operations = [
        migrations.CreateModel(
            name="PipelineStage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                (
                    "app",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pipeline_stages",
                        to="apps.app",
                    ),
                ),
                (
                    "environment",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pipeline_stage",
                        to="apps.environment",
                    ),
                ),
            ],
            options={"ordering": ["app", "position"]},
        ),
        migrations.AddConstraint(
            model_name="pipelinestage",
            constraint=models.UniqueConstraint(
                fields=("app", "position"), name="pipeline_stage_position"
            ),
        ),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="app",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="promotion_policies",
                to="apps.app",
            ),
        ),
        migrations.AddField(
            model_name="promotionpolicy",
            name="environment",
            field=models.OneToOneField(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="promotion_policy",
                to="apps.environment",
            ),
        ),
        migrations.AddField(
            model_name="promotionrequest",
            name="source_environment",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="apps.environment",
            ),
        ),
        migrations.AddField(
            model_name="promotionrequest",
            name="target_environment",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="apps.environment",
            ),
        ),
        migrations.RunPython(steps_of_today, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="environment",
            field=models.OneToOneField(
                help_text="The step into this environment (from the stage before it).",
                on_delete=django.db.models.deletion.CASCADE,
                related_name="promotion_policy",
                to="apps.environment",
            ),
        ),
        migrations.AlterField(
            model_name="promotionrequest",
            name="source_environment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="apps.environment"
            ),
        ),
        migrations.AlterField(
            model_name="promotionrequest",
            name="target_environment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="apps.environment"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="promotionrequest", name="one_pending_promotion_per_app"
        ),
        migrations.AddConstraint(
            model_name="promotionrequest",
            constraint=models.UniqueConstraint(
                condition=Q(("status", "pending")),
                fields=("target_environment",),
                name="one_pending_promotion_per_step",
            ),
        ),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="check_path",
            field=models.CharField(
                blank=True,
                help_text="Empty: no check. Else the source stage must answer GET <path> first.",
                max_length=255,
                validators=[
                    django.core.validators.RegexValidator(
                        "^/[^\\s#]*$",
                        "A path on the source stage's site, starting with “/” (e.g. /healthz).",
                    )
                ],
            ),
        ),
        migrations.AlterField(
            model_name="promotionpolicy",
            name="require_ci_success",
            field=models.BooleanField(
                default=False,
                help_text="The commit the source stage runs must have passed CI on the Git provider.",
            ),
        ),
    ]
