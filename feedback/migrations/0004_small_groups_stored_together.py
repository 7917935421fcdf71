"""In closed cycles, answers of anonymous groups with fewer than k answers are stored as
"smaller groups", and every anonymous decline too: a stored group of one named its member."""

from django.db import migrations, models
from django.db.models import Count

ANONYMOUS_GROUPS = ("peer", "direct_report", "outside")
GROUP_CHOICES = [
    ("self", "Self"),
    ("manager", "Manager"),
    ("peer", "Peers"),
    ("direct_report", "Direct reports"),
    ("outside", "Outside raters"),
    ("small_groups", "Smaller groups"),
]


def merge(apps, schema_editor):
    response_model = apps.get_model("feedback", "Response")
    decline_model = apps.get_model("feedback", "Decline")
    for cycle in apps.get_model("surveys", "Cycle").objects.filter(status="closed"):
        small = (
            response_model.objects.filter(cycle=cycle, group__in=ANONYMOUS_GROUPS)
            .values("subject_id", "group")
            .annotate(n=Count("id"))
            .filter(n__lt=cycle.anonymity_min)
            .order_by()
        )
        for row in small:
            response_model.objects.filter(cycle=cycle, subject_id=row["subject_id"], group=row["group"]).update(
                group="small_groups"
            )
        decline_model.objects.filter(cycle=cycle, group__in=ANONYMOUS_GROUPS).update(group="small_groups")


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0003_sealed_answers"),
        ("surveys", "0007_closed_cycles_forget_who_answered"),
    ]

    operations = [
        migrations.AlterField(
            model_name="decline",
            name="group",
            field=models.CharField(choices=GROUP_CHOICES, max_length=20),
        ),
        migrations.AlterField(
            model_name="response",
            name="group",
            field=models.CharField(choices=GROUP_CHOICES, max_length=20),
        ),
        migrations.RunPython(merge, migrations.RunPython.noop),
    ]
