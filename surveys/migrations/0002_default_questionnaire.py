"""Loads the default Kotter questionnaire (surveys/questionnaires/kotter-balance-v1.json)."""

from __future__ import annotations

from django.db import migrations


def load_default_questionnaire(apps, schema_editor):
    from surveys.services import DEFAULT_QUESTIONNAIRE_FILE, questionnaire_load_file

    questionnaire_load_file(path=DEFAULT_QUESTIONNAIRE_FILE, apps=apps)


class Migration(migrations.Migration):
    dependencies = [("surveys", "0001_initial")]

    operations = [migrations.RunPython(load_default_questionnaire, migrations.RunPython.noop)]
