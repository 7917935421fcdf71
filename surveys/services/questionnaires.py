"""Questionnaires: loading from a fixture, copying for edits, the default."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.core.exceptions import ValidationError
from django.db import transaction

from surveys.models import (
    Item,
    Questionnaire,
)

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONNAIRE_NAME = "Kotter balance"
DEFAULT_QUESTIONNAIRE_FILE = Path(__file__).resolve().parents[1] / "questionnaires" / "kotter-balance-v1.json"


def questionnaire_load(*, data: dict[str, Any], apps: Apps = global_apps) -> Questionnaire:
    """Create a questionnaire version from its JSON description (see ``questionnaires/``).

    Loading the same name and version again returns the existing version untouched.
    ``apps`` lets the data migration run this with its historical models.
    """
    questionnaire_model = apps.get_model("surveys", "Questionnaire")
    dimension_model = apps.get_model("surveys", "Dimension")
    item_model = apps.get_model("surveys", "Item")
    with transaction.atomic():
        questionnaire, created = questionnaire_model.objects.get_or_create(
            name=data["name"],
            version=data["version"],
            defaults={"description": data.get("description", "")},
        )
        if not created:
            return questionnaire
        items = []
        for position, spec in enumerate(data["dimensions"], start=1):
            dimension = dimension_model.objects.create(
                questionnaire=questionnaire,
                side=spec["side"],
                key=spec["key"],
                name=spec["name"],
                description=spec.get("description", ""),
                pair=spec["pair"],
                position=position,
            )
            items += [
                item_model(dimension=dimension, code=f"{spec['key']}-{number}", text=text, position=number)
                for number, text in enumerate(spec["items"], start=1)
            ]
        item_model.objects.bulk_create(items)
    return questionnaire


def questionnaire_load_file(*, path: Path, apps: Apps = global_apps) -> Questionnaire:
    return questionnaire_load(data=json.loads(path.read_text(encoding="utf-8")), apps=apps)


def questionnaire_copy(*, questionnaire: Questionnaire) -> Questionnaire:
    """The next version of a questionnaire, with the same dimensions and items, to edit freely."""
    with transaction.atomic():
        latest = Questionnaire.objects.filter(name=questionnaire.name).order_by("-version").first()
        assert latest is not None
        copy = Questionnaire.objects.create(
            name=questionnaire.name,
            version=latest.version + 1,
            description=questionnaire.description,
        )
        for dimension in questionnaire.dimensions.prefetch_related("items"):
            items = list(dimension.items.all())
            dimension.pk = None
            dimension.questionnaire = copy
            dimension.save()
            for item in items:
                item.pk = None
                item.dimension = dimension
            Item.objects.bulk_create(items)
    return copy


def questionnaire_default() -> Questionnaire:
    """The newest version of the default questionnaire."""
    questionnaire = Questionnaire.objects.filter(name=DEFAULT_QUESTIONNAIRE_NAME).order_by("-version").first()
    if questionnaire is None:
        questionnaire = Questionnaire.objects.order_by("-created_at").first()
    if questionnaire is None:
        raise ValidationError({"questionnaire": "No questionnaire exists yet."})
    return questionnaire
