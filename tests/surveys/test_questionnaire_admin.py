"""A questionnaire version in use is frozen in the admin: its items can be neither changed, added nor deleted.

The survey keeps what a version asks per process (``feedback.selectors``), which is right
only because the version cannot change once a launched cycle uses it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from surveys.models import Cycle, Item
from tests.factories import CycleFactory


@pytest.fixture
def superuser_client(client: Client, django_user_model: Any) -> Client:
    client.force_login(django_user_model.objects.create_superuser(username="root", password="x", email="r@x.test"))
    return client


@pytest.fixture
def item_in_use(db: None) -> Item:
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    item = Item.objects.filter(dimension__questionnaire=cycle.questionnaire).first()
    assert item is not None
    return item


def test_an_item_of_a_version_in_use_cannot_be_deleted(superuser_client: Client, item_in_use: Item) -> None:
    response = superuser_client.post(f"/admin/surveys/item/{item_in_use.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    page = superuser_client.get("/admin/surveys/item/")
    assert page.status_code == 200 and item_in_use.code.encode() in page.content
    assert b"delete_selected" not in page.content
    assert Item.objects.filter(pk=item_in_use.pk).exists()


def test_an_item_of_a_version_in_use_cannot_be_changed(superuser_client: Client, item_in_use: Item) -> None:
    url = f"/admin/surveys/item/{item_in_use.pk}/change/"
    page = superuser_client.get(url)
    assert page.status_code == 200 and item_in_use.text.encode() in page.content
    assert b'name="text"' not in page.content
    superuser_client.post(
        url, {"dimension": item_in_use.dimension_id, "code": item_in_use.code, "text": "Reworded.", "position": 1}
    )
    before = item_in_use.text
    item_in_use.refresh_from_db()
    assert item_in_use.text == before != "Reworded."


def test_no_item_can_be_added_to_a_version_in_use(superuser_client: Client, item_in_use: Item) -> None:
    before = Item.objects.count()
    response = superuser_client.post(
        "/admin/surveys/item/add/",
        {"dimension": item_in_use.dimension_id, "code": "added-1", "text": "A new behaviour.", "position": 9},
    )
    assert response.status_code == 200  # the form again, with the dimension refused
    assert b"Select a valid choice" in response.content
    assert Item.objects.count() == before


def test_an_item_can_still_be_added_to_a_version_no_launched_cycle_uses(
    superuser_client: Client, item_in_use: Item
) -> None:
    from surveys.services import questionnaire_copy

    draft = questionnaire_copy(questionnaire=item_in_use.dimension.questionnaire)
    dimension = draft.dimensions.order_by("position").first()
    assert dimension is not None
    response = superuser_client.post(
        "/admin/surveys/item/add/",
        {"dimension": dimension.pk, "code": "added-1", "text": "A new behaviour.", "position": 9},
    )
    assert response.status_code == 302
    assert Item.objects.filter(dimension=dimension, code="added-1").exists()


def test_a_launched_cycle_cannot_be_deleted_so_its_version_stays_frozen(
    superuser_client: Client, item_in_use: Item
) -> None:
    cycle = Cycle.objects.get(questionnaire=item_in_use.dimension.questionnaire, status=Cycle.Status.OPEN)
    response = superuser_client.post(f"/admin/surveys/cycle/{cycle.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    listing = superuser_client.get("/admin/surveys/cycle/")
    assert listing.status_code == 200 and cycle.name.encode() in listing.content
    assert b"delete_selected" not in listing.content
    assert Cycle.objects.filter(pk=cycle.pk, status=Cycle.Status.OPEN).exists()


def test_the_admin_changes_neither_a_cycles_status_nor_a_launched_cycles_questionnaire(
    superuser_client: Client, item_in_use: Item
) -> None:
    cycle = Cycle.objects.get(questionnaire=item_in_use.dimension.questionnaire, status=Cycle.Status.OPEN)
    response = superuser_client.get(f"/admin/surveys/cycle/{cycle.pk}/change/")
    page = response.content.decode()
    assert response.status_code == 200 and 'name="name"' in page and cycle.get_status_display() in page
    assert 'name="status"' not in page and 'name="questionnaire"' not in page


def test_the_admin_cannot_lower_a_launched_cycles_k(superuser_client: Client, item_in_use: Item) -> None:
    cycle = Cycle.objects.get(questionnaire=item_in_use.dimension.questionnaire, status=Cycle.Status.OPEN)
    page = superuser_client.get(f"/admin/surveys/cycle/{cycle.pk}/change/").content.decode()
    assert 'name="name"' in page
    for field in ("anonymity_min", "comment_min", "team"):
        assert f'name="{field}"' not in page
    # a post that carries it anyway changes nothing of it
    k = cycle.anonymity_min
    assert k > 2
    superuser_client.post(
        f"/admin/surveys/cycle/{cycle.pk}/change/",
        {"name": cycle.name, "deadline_0": "2030-01-01", "deadline_1": "12:00:00", "anonymity_min": 2},
    )
    cycle.refresh_from_db()
    assert cycle.anonymity_min == k
    # a draft's stays editable
    draft = CycleFactory(status=Cycle.Status.DRAFT)
    assert 'name="anonymity_min"' in superuser_client.get(f"/admin/surveys/cycle/{draft.pk}/change/").content.decode()


def test_a_draft_cycle_can_still_be_deleted(superuser_client: Client, db: None) -> None:
    cycle = CycleFactory(status=Cycle.Status.DRAFT)
    response = superuser_client.post(f"/admin/surveys/cycle/{cycle.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Cycle.objects.filter(pk=cycle.pk).exists()
