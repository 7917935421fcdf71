"""Writes for teams, questionnaires, cycles and invitations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db import transaction

from surveys import links
from surveys.models import Invitation, InvitationLink, Item, Questionnaire

DEFAULT_QUESTIONNAIRE_FILE = Path(__file__).resolve().parent / "questionnaires" / "kotter-balance-v1.json"


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


def invitation_link_create(*, invitation: Invitation) -> str:
    """A new secret survey link for ``invitation``; returns the raw token, which is never stored.

    Call it while composing the email that carries the link: only the SHA-256 of the
    token is kept, so the email is the one place the working link exists.
    """
    token = links.token_new()
    InvitationLink.objects.create(invitation=invitation, token_hash=links.token_hash(token))
    return token


def invitation_links_create(*, invitations: list[Invitation]) -> dict[int, str]:
    """Bulk version of ``invitation_link_create``: {invitation id: raw token}, one insert."""
    tokens = {invitation.pk: links.token_new() for invitation in invitations}
    InvitationLink.objects.bulk_create(
        [InvitationLink(invitation_id=pk, token_hash=links.token_hash(token)) for pk, token in tokens.items()]
    )
    return tokens
