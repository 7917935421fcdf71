from __future__ import annotations

from typing import Any

from django.db import migrations, models


def sent_lists_fill(apps: Any, schema_editor: Any) -> None:
    # A list sent before these fields existed is what its page showed then: the subject's
    # own draft invitations, in the order the page listed them.
    Nomination = apps.get_model("surveys", "Nomination")
    Invitation = apps.get_model("surveys", "Invitation")
    for nomination in Nomination.objects.filter(submitted_at__isnull=False).iterator():
        drafts = list(
            Invitation.objects.filter(
                subject_id=nomination.subject_id, source="nominated", group__in=("peer", "outside")
            ).order_by("group", "rater_email")
        )
        nomination.sent_peer_ids = [
            draft.rater_person_id for draft in drafts if draft.group == "peer" and draft.rater_person_id is not None
        ]
        nomination.sent_outside = [
            {"name": draft.rater_name, "email": draft.rater_email} for draft in drafts if draft.group == "outside"
        ]
        nomination.save(update_fields=["sent_peer_ids", "sent_outside"])


class Migration(migrations.Migration):
    dependencies = [("surveys", "0014_former_addresses")]

    operations = [
        migrations.AddField(
            model_name="nomination",
            name="sent_peer_ids",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="nomination",
            name="sent_outside",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="invitation",
            name="manager_added_as",
            field=models.CharField(
                blank=True,
                choices=[
                    ("self", "Self"),
                    ("manager", "Manager"),
                    ("peer", "Peers"),
                    ("direct_report", "Direct reports"),
                    ("outside", "Outside raters"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(sent_lists_fill, migrations.RunPython.noop),
    ]
