from django.db import migrations, models


def first_note(apps, schema_editor):
    apps.get_model("notes", "Note").objects.create(source="release", text="made by the release")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("source", models.CharField(max_length=16)),
                ("text", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunPython(first_note, migrations.RunPython.noop),
    ]
