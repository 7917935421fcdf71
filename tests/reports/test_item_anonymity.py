"""Item figures beside dimension figures: no combination of them may single out one rater."""

from __future__ import annotations

import random

import pytest

from reports.scoring import DimensionSpec, ItemSpec, RaterAnswers, Rules, report_compute, report_data

SIDES = ("management",) * 3 + ("leadership",) * 3
FIVE_ITEM_DIMENSIONS = tuple(
    DimensionSpec(
        key=f"d{number}",
        name=f"D{number}",
        side=SIDES[number],
        pair=number % 3 + 1,
        items=tuple(ItemSpec(code=f"d{number}-{item}", text=f"item {number}.{item}") for item in range(5)),
    )
    for number in range(6)
)
RULES = Rules(k=3, comment_min=3, quadrant_cut=3.5)


def planning_heavy_rater(group: str, generator: random.Random, skip: tuple[str, ...] = ()) -> RaterAnswers:
    """High answers on the first dimension, low elsewhere, so its five items top the list."""
    ratings: dict[str, int | None] = {}
    for dimension in FIVE_ITEM_DIMENSIONS:
        for item in dimension.items:
            if item.code in skip:
                ratings[item.code] = None
            else:
                ratings[item.code] = generator.choice((4, 5)) if dimension.key == "d0" else generator.choice((1, 2, 3))
    return RaterAnswers(group=group, ratings=ratings)


def listed(data: dict) -> dict[str, dict]:
    return {item["code"]: item for item in data["items"]["highest"] + data["items"]["lowest"]}


@pytest.mark.parametrize("seed", range(25))
def test_a_lone_cant_say_does_not_let_the_item_list_recover_that_raters_dimension_score(seed: int) -> None:
    # given: k=3, manager + four peers; peer P1 says "can't say" on item 2 of the first
    # dimension. Before the fix all five items were listed and 25·D − Σ n·item was P1's
    # own dimension score.
    generator = random.Random(seed)
    raters = [planning_heavy_rater("manager", generator), planning_heavy_rater("self", generator)]
    raters.append(planning_heavy_rater("peer", generator, skip=("d0-1",)))
    raters.extend(planning_heavy_rater("peer", generator) for _ in range(3))

    # when
    data = report_data(result=report_compute(raters=raters, dimensions=FIVE_ITEM_DIMENSIONS, rules=RULES))

    # then: the dimension figure is still there, but no item of it stands beside it
    planning = data["dimensions"][0]
    assert planning["others"]["n"] == 5
    items = listed(data)
    assert not [code for code in items if code.startswith("d0-")]
    # and the attack has nothing to work with: every listed item rests on the raters of
    # its own dimension's Others figure, all of whom answered the same number of items
    others_n = {dimension["name"]: dimension["others"]["n"] for dimension in data["dimensions"]}
    assert all(item["n"] == others_n[item["dimension"]] for item in items.values())


def test_items_answered_by_everyone_are_still_listed() -> None:
    generator = random.Random(7)
    raters = [planning_heavy_rater("manager", generator)]
    raters.extend(planning_heavy_rater("peer", generator) for _ in range(4))
    data = report_data(result=report_compute(raters=raters, dimensions=FIVE_ITEM_DIMENSIONS, rules=RULES))
    items = listed(data)
    assert sorted(code for code in items if code.startswith("d0-")) == [f"d0-{i}" for i in range(5)]
    assert all(item["n"] == 5 for item in items.values())
    assert data["items"]["shown"] == 30


def test_an_item_answered_by_fewer_raters_than_its_dimension_figure_is_not_shown() -> None:
    # Everyone answers four of the five items of d0 (same count, so the dimension's items
    # may be listed), but P1 skips d0-1 and everyone else skips d0-4: both items rest on
    # other raters than the dimension figure, so neither is shown; the other three are.
    generator = random.Random(3)
    raters = [planning_heavy_rater("manager", generator, skip=("d0-4",))]
    raters.append(planning_heavy_rater("peer", generator, skip=("d0-1",)))
    raters.extend(planning_heavy_rater("peer", generator, skip=("d0-4",)) for _ in range(3))
    result = report_compute(raters=raters, dimensions=FIVE_ITEM_DIMENSIONS, rules=RULES)
    shown = [item.spec.code for item in result.items if item.dimension.key == "d0"]
    assert shown == ["d0-0", "d0-2", "d0-3"]
    planning_others = result.dimensions[0].others
    assert planning_others is not None
    assert all(item.others.raters == planning_others.raters for item in result.items if item.dimension.key == "d0")


def test_one_rater_answering_more_items_than_the_rest_hides_the_dimensions_items() -> None:
    # Two items. Two peers answer only item 1, the third answers both. Before the fix item 1
    # was listed (n=3, the dimension's own raters) and 3·D − 3·item1 = (b − a) / 2 for the
    # third peer's answers a and b: one person's answers, isolated.
    dimension = DimensionSpec(
        key="plan",
        name="Plan",
        side="management",
        pair=1,
        items=(ItemSpec("plan-1", "plan first"), ItemSpec("plan-2", "plan second")),
    )
    raters = [
        RaterAnswers(group="peer", ratings={"plan-1": 4, "plan-2": None}),
        RaterAnswers(group="peer", ratings={"plan-1": 5, "plan-2": None}),
        RaterAnswers(group="peer", ratings={"plan-1": 5, "plan-2": 2}),
    ]
    data = report_data(result=report_compute(raters=raters, dimensions=(dimension,), rules=RULES))
    assert data["dimensions"][0]["others"]["n"] == 3
    assert data["items"] == {"shown": 0, "highest": [], "lowest": []}
