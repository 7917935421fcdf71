"""A closed cycle keeps its progress as counts per subject and forgets which invitation was answered."""

from django.db import migrations, models
from django.db.models import Count, Q

ANONYMOUS_GROUPS = ("peer", "direct_report", "outside")


def forget(apps, schema_editor):
    cycle_model = apps.get_model("surveys", "Cycle")
    subject_model = apps.get_model("surveys", "Subject")
    invitation_model = apps.get_model("surveys", "Invitation")
    for cycle in cycle_model.objects.filter(status="closed"):
        counts = {}
        for row in (
            invitation_model.objects.filter(cycle=cycle)
            .values("subject_id", "group")
            .annotate(invited=Count("id"), answered=Count("id", filter=Q(status="completed")))
            .order_by()
        ):
            key = "anonymous" if row["group"] in ANONYMOUS_GROUPS else row["group"]
            pair = counts.setdefault(row["subject_id"], {}).setdefault(key, [0, 0])
            pair[0] += row["invited"]
            pair[1] += row["answered"]
        for subject in subject_model.objects.filter(cycle=cycle):
            progress = {"self": [0, 0], "manager": [0, 0], "anonymous": [0, 0], **counts.get(subject.pk, {})}
            invited, answered = progress["anonymous"]
            progress["anonymous"] = [invited, answered if invited >= cycle.anonymity_min else None]
            subject.final_progress = progress
            subject.save(update_fields=["final_progress"])
        invitation_model.objects.filter(cycle=cycle).update(status="closed")


class Migration(migrations.Migration):
    dependencies = [
        ("surveys", "0006_subject_release_email"),
    ]

    operations = [
        migrations.AddField(
            model_name="subject",
            name="final_progress",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="invitation",
            name="status",
            field=models.CharField(
                choices=[
                    ("draft", "Draft"),
                    ("open", "Open"),
                    ("completed", "Completed"),
                    ("declined", "Declined"),
                    ("expired", "Expired"),
                    ("closed", "Closed"),
                ],
                default="draft",
                max_length=20,
            ),
        ),
        migrations.RunPython(forget, migrations.RunPython.noop),
    ]
