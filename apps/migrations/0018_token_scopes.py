# Existing tokens could do everything, so the default fills them in as "write": nothing
# that worked stops working. expires_at empty: they never expire, as before.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0017_previews"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, help_text="Empty: never expires.", null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read-only"), ("write", "Read and write")],
                default="write",
                max_length=5,
            ),
        ),
    ]
