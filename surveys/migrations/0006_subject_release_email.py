"""Each subject keeps the address it had when its cycle launched: a released report goes there."""

from django.db import migrations, models


def lock_addresses(apps, schema_editor):
    subject_model = apps.get_model("surveys", "Subject")
    for subject in subject_model.objects.exclude(cycle__status__in=["draft", "nominating"]).select_related("person"):
        subject.release_email = subject.person.email.lower()
        subject.save(update_fields=["release_email"])


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0005_outside_raters_rater_source"),
    ]

    operations = [
        migrations.AddField(
            model_name="subject",
            name="release_email",
            field=models.EmailField(blank=True, max_length=254),
        ),
        migrations.RunPython(lock_addresses, migrations.RunPython.noop),
    ]
