from __future__ import annotations

from typing import Any

from django.db import migrations, models


def second_invitations_unlink(apps: Any, schema_editor: Any) -> None:
    # A person asked twice about one subject before this was refused keeps both invitations
    # (answers may hang on them, and a closed cycle's counts do); every one but the first no
    # longer names the person, so that the rule can hold from here on.
    Invitation = apps.get_model("surveys", "Invitation")
    seen: set[tuple[int, int]] = set()
    rows = (
        Invitation.objects.filter(rater_person__isnull=False)
        .order_by("subject_id", "rater_person_id", "pk")
        .values_list("pk", "subject_id", "rater_person_id")
    )
    later = []
    for pk, subject_id, person_id in rows.iterator():
        if (subject_id, person_id) in seen:
            later.append(pk)
        seen.add((subject_id, person_id))
    Invitation.objects.filter(pk__in=later).update(rater_person=None)


class Migration(migrations.Migration):
    dependencies = [("surveys", "0015_nomination_sent_list")]

    operations = [
        migrations.RunPython(second_invitations_unlink, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="invitation",
            constraint=models.UniqueConstraint(
                condition=models.Q(rater_person__isnull=False),
                fields=("subject", "rater_person"),
                name="invitation_unique_person_per_subject",
            ),
        ),
    ]
