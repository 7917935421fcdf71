from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from surveys.models import Dimension, Item, Side
from tests.factories import default_questionnaire


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db
def test_default_questionnaire_has_kotters_six_dimensions_of_five_items() -> None:
    questionnaire = default_questionnaire()
    dimensions = list(Dimension.objects.filter(questionnaire=questionnaire).order_by("position"))
    assert [d.key for d in dimensions] == [
        "planning_budgeting",
        "organizing_staffing",
        "controlling_problem_solving",
        "establishing_direction",
        "aligning_people",
        "motivating_inspiring",
    ]
    assert [d.side for d in dimensions].count(Side.MANAGEMENT) == 3
    # Kotter's pairs: each management process faces its leadership counterpart.
    pairs = {(d.side, d.pair): d.key for d in dimensions}
    assert pairs[(Side.MANAGEMENT, 1)] == "planning_budgeting"
    assert pairs[(Side.LEADERSHIP, 1)] == "establishing_direction"
    assert pairs[(Side.MANAGEMENT, 3)] == "controlling_problem_solving"
    assert pairs[(Side.LEADERSHIP, 3)] == "motivating_inspiring"
    items = Item.objects.filter(dimension__questionnaire=questionnaire)
    assert items.count() == 30
    assert all(Item.objects.filter(dimension=d).count() == 5 for d in dimensions)
    assert len(set(items.values_list("code", flat=True))) == 30


@pytest.mark.django_db
def test_item_codes_are_unique_across_a_questionnaires_dimensions() -> None:
    from django.core.exceptions import ValidationError

    questionnaire = default_questionnaire()
    planning, direction = (
        Dimension.objects.get(questionnaire=questionnaire, key="planning_budgeting"),
        Dimension.objects.get(questionnaire=questionnaire, key="establishing_direction"),
    )
    taken = Item.objects.filter(dimension=planning).first()
    assert taken is not None
    duplicate = Item(dimension=direction, code=taken.code, text="Another behaviour.", position=9)
    with pytest.raises(ValidationError) as error:
        duplicate.full_clean()
    assert "code" in error.value.message_dict
    Item(dimension=direction, code="establishing_direction-9", text="Another behaviour.", position=9).full_clean()
