"""The rater group "other" becomes "outside" (outside raters), and each invitation records
who put the rater on the list."""

from django.db import migrations, models

GROUP_CHOICES = [
    ("self", "Self"),
    ("manager", "Manager"),
    ("peer", "Peers"),
    ("direct_report", "Direct reports"),
    ("outside", "Outside raters"),
]


def forwards(apps, schema_editor):
    invitation_model = apps.get_model("surveys", "Invitation")
    invitation_model.objects.filter(group="other").update(group="outside")
    # Who added the raters invited so far was never recorded: guessing would tell the
    # coach "from the reporting lines" about someone the manager typed in by hand.
    invitation_model.objects.update(source="unknown")


def backwards(apps, schema_editor):
    apps.get_model("surveys", "Invitation").objects.filter(group="outside").update(group="other")


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0004_nominations"),
    ]

    operations = [
        migrations.AddField(
            model_name="invitation",
            name="source",
            field=models.CharField(
                choices=[
                    ("reporting_lines", "From the reporting lines"),
                    ("manager", "Added by the manager"),
                    ("nominated", "Nominated by the subject"),
                    ("unknown", "Not recorded (invited before sources were recorded)"),
                ],
                default="reporting_lines",
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="invitation",
            name="group",
            field=models.CharField(choices=GROUP_CHOICES, max_length=20),
        ),
        migrations.RunPython(forwards, backwards),
    ]
