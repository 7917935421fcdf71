"""Answers are sealed while their cycle is open: a table of ciphertexts, and the answers
already stored for open cycles sealed into it. Also the group "other" becomes "outside"."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

GROUP_CHOICES = [
    ("self", "Self"),
    ("manager", "Manager"),
    ("peer", "Peers"),
    ("direct_report", "Direct reports"),
    ("outside", "Outside raters"),
]


def rename_groups(apps, schema_editor):
    for name in ("Response", "Decline"):
        apps.get_model("feedback", name).objects.filter(group="other").update(group="outside")


def seal_open_cycles(apps, schema_editor):
    from feedback.sealing import answer_seal

    response_model = apps.get_model("feedback", "Response")
    decline_model = apps.get_model("feedback", "Decline")
    sealed_model = apps.get_model("feedback", "SealedAnswer")
    open_cycles = list(apps.get_model("surveys", "Cycle").objects.filter(status="open").values_list("id", flat=True))
    for cycle_id in open_cycles:
        sealed = []
        for response in response_model.objects.filter(cycle_id=cycle_id):
            payload = {"kind": "response", "subject": response.subject_id, "group": response.group}
            payload["ratings"] = response.ratings
            texts = {name: str(text) for name, text in (response.comments or {}).items()}
            sealed.append(
                sealed_model(
                    cycle_id=cycle_id,
                    ciphertext=answer_seal(cycle_id=cycle_id, payload=payload, texts=texts, group_final=False),
                )
            )
        for decline in decline_model.objects.filter(cycle_id=cycle_id).exclude(reason=""):
            payload = {"kind": "decline", "subject": decline.subject_id, "group": decline.group}
            texts = {"reason": decline.reason}
            sealed.append(
                sealed_model(
                    cycle_id=cycle_id,
                    ciphertext=answer_seal(cycle_id=cycle_id, payload=payload, texts=texts, group_final=False),
                )
            )
        sealed_model.objects.bulk_create(sealed)
        response_model.objects.filter(cycle_id=cycle_id).delete()
        decline_model.objects.filter(cycle_id=cycle_id).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0002_response_decline_random_order"),
        ("surveys", "0005_outside_raters_rater_source"),
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
        migrations.RunPython(rename_groups, migrations.RunPython.noop),
        migrations.CreateModel(
            name="SealedAnswer",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("ciphertext", models.BinaryField()),
                (
                    "cycle",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="sealed_answers",
                        to="surveys.cycle",
                    ),
                ),
            ],
            options={"ordering": ["id"]},
        ),
        # The blobs are ciphertext: compressing them can only waste time.
        migrations.RunSQL(
            "ALTER TABLE feedback_sealedanswer ALTER COLUMN ciphertext SET STORAGE EXTERNAL",
            migrations.RunSQL.noop,
        ),
        migrations.RunPython(seal_open_cycles, migrations.RunPython.noop),
    ]
