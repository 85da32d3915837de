import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    # Apart from 0023: on PostgreSQL the NOT NULL cannot be set in the transaction that
    # filled the column (its foreign key checks are still pending there).

    dependencies = [
        ("apps", "0023_tokens_into_personal_teams"),
    ]

    operations = [
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
