"""The "Coaches" group exists from the start: an administrator only adds people to it."""

from __future__ import annotations

from typing import Any

from django.db import migrations

COACHES_GROUP = "Coaches"


def coaches_group_create(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.get_or_create(name=COACHES_GROUP)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("reports", "0004_durable_jobs"),
    ]

    operations = [migrations.RunPython(coaches_group_create, migrations.RunPython.noop)]
