"""The scoring rules, one example each, with the numbers worked out by hand."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from typing import Any

import pytest

from reports.scoring import (
    CONSISTENT,
    DIVIDED,
    REPORT_FORMAT,
    DimensionSpec,
    ItemSpec,
    RaterAnswers,
    Rules,
    anonymity_filter,
    balance_label,
    comments_filter,
    gap_flag,
    one_decimal,
    quadrant_of,
    report_compute,
    report_data,
    trend_compute,
)
from surveys.vocabulary import COMBINED, DIRECT_REPORT, MANAGER, OTHERS, OUTSIDE, PEER, SELF

KEYS = (
    ("plan", "management", 1),
    ("organize", "management", 2),
    ("control", "management", 3),
    ("direct", "leadership", 1),
    ("align", "leadership", 2),
    ("motivate", "leadership", 3),
)
DIMENSIONS = tuple(
    DimensionSpec(
        key=key,
        name=key.title(),
        side=side,
        pair=pair,
        items=(ItemSpec(f"{key}-1", f"{key} first"), ItemSpec(f"{key}-2", f"{key} second")),
    )
    for key, side, pair in KEYS
)
RULES = Rules(k=3, comment_min=3, quadrant_cut=Fraction(7, 2))


def rater(group: str, default: int | None = 3, comments: dict[str, str] | None = None, **by_key: Any) -> RaterAnswers:
    """A rater answering ``default`` everywhere except the dimensions given as (item 1, item 2)."""
    ratings: dict[str, int | None] = {}
    for key, _, _ in KEYS:
        first, second = by_key.get(key, (default, default))
        ratings[f"{key}-1"] = first
        ratings[f"{key}-2"] = second
    return RaterAnswers(group=group, ratings=ratings, comments=comments or {})


def compute(raters: list[RaterAnswers], rules: Rules = RULES) -> dict[str, Any]:
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(1))
    return report_data(result=result)


def dimension(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(d for d in data["dimensions"] if d["key"] == key)


def groups(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {g["group"]: g for g in dimension(data, key)["groups"]}


def peers(count: int, **by_key: Any) -> list[RaterAnswers]:
    return [rater(PEER, **by_key) for _ in range(count)]


# --- The rules per item ---------------------------------------------------------------


def test_a_group_is_shown_from_exactly_k_raters_and_dropped_below() -> None:
    shown = anonymity_filter(groups=[PEER] * 3, answered=[True] * 3, k=3)
    assert shown.labels == {PEER: frozenset({0, 1, 2}), OTHERS: frozenset({0, 1, 2})}
    dropped = anonymity_filter(groups=[PEER] * 3, answered=[True, True, False], k=3)
    assert dropped.labels == {}
    assert dropped.dropped == (PEER,)


def test_small_groups_are_combined_when_together_they_reach_k_and_none_is_shown_alone() -> None:
    groups_ = [MANAGER, PEER, PEER, PEER, DIRECT_REPORT, DIRECT_REPORT, OUTSIDE]
    selection = anonymity_filter(groups=groups_, answered=[True] * 7, k=3)
    assert selection.labels[PEER] == frozenset({1, 2, 3})
    assert selection.labels[COMBINED] == frozenset({4, 5, 6})
    assert DIRECT_REPORT not in selection.labels and OUTSIDE not in selection.labels
    assert selection.labels[OTHERS] == frozenset(range(7))
    assert selection.dropped == ()


def test_a_dropped_group_is_never_folded_into_others() -> None:
    selection = anonymity_filter(groups=[MANAGER, PEER, PEER, PEER, DIRECT_REPORT], answered=[True] * 5, k=3)
    assert selection.labels[OTHERS] == frozenset({0, 1, 2, 3})
    assert selection.dropped == (DIRECT_REPORT,)


def test_others_needs_an_anonymous_figure_and_never_includes_self() -> None:
    alone = anonymity_filter(groups=[SELF, MANAGER, PEER], answered=[True] * 3, k=3)
    assert alone.labels == {SELF: frozenset({0}), MANAGER: frozenset({1})}
    with_peers = anonymity_filter(groups=[SELF, MANAGER, PEER, PEER, PEER], answered=[True] * 5, k=3)
    assert with_peers.labels[OTHERS] == frozenset({1, 2, 3, 4})


def test_a_cant_say_removes_one_answer_never_the_item_or_the_dimension() -> None:
    # four peers on plan: one says "can't say" on plan-1; the item keeps its three answers
    raters = [*peers(3, plan=(4, 2)), rater(PEER, plan=(None, 5))]
    data = compute(raters)
    plan = dimension(data, "plan")
    items = {item["code"]: item["others"] for item in plan["items"]}
    assert items["plan-1"] == {"score": 4.0, "n": 3}
    assert items["plan-2"] == {"score": one_decimal(Fraction(2 + 2 + 2 + 5, 4)), "n": 4}
    # the dimension is the mean of its item scores, each item weighing the same
    assert groups(data, "plan")[PEER] == {
        "group": PEER,
        "label": "Peers",
        "score": one_decimal((Fraction(4) + Fraction(11, 4)) / 2),
        "n": 4,
    }


def test_an_item_below_k_is_left_out_of_the_dimension_mean_not_counted_as_zero() -> None:
    raters = [*peers(2, plan=(5, 1)), rater(PEER, plan=(None, 1))]
    plan = dimension(compute(raters), "plan")
    assert [item["others"] for item in plan["items"]] == [None, {"score": 1.0, "n": 3}]
    assert plan["others"]["score"] == 1.0


def test_one_rater_saying_cant_say_once_does_not_empty_highest_and_lowest() -> None:
    # Every dimension differs, so twelve items have Others scores; one peer skips one item.
    levels = {"plan": (5, 5), "organize": (4, 4), "control": (3, 3), "direct": (2, 2), "align": (1, 1)}
    raters = [*peers(3, **levels), rater(PEER, **{**levels, "plan": (None, 5)})]
    data = compute(raters)
    assert data["items"]["shown"] == 12
    assert [item["score"] for item in data["items"]["highest"]] == [5.0, 5.0, 4.0, 4.0, 3.0]
    assert [item["score"] for item in data["items"]["lowest"]] == [1.0, 1.0, 2.0, 2.0, 3.0]
    listed = [item["code"] for item in data["items"]["highest"] + data["items"]["lowest"]]
    assert len(listed) == len(set(listed))


def test_with_fewer_than_ten_items_the_lists_split_the_items_without_repeating_one() -> None:
    raters = peers(3, plan=(5, 4), organize=(2, 1))
    only_plan_and_organize = [
        RaterAnswers(group=PEER, ratings={k: v for k, v in r.ratings.items() if k.startswith(("plan", "organize"))})
        for r in raters
    ]
    data = compute(only_plan_and_organize)
    assert [item["code"] for item in data["items"]["highest"]] == ["plan-1", "plan-2"]
    assert [item["code"] for item in data["items"]["lowest"]] == ["organize-2", "organize-1"]


# --- Indices, balance, quadrants, gaps, pairs -----------------------------------------


def test_indices_balance_and_quadrant_come_from_others_dimension_scores() -> None:
    raters = [
        rater(SELF, default=5),
        rater(MANAGER, default=2),
        *peers(3, plan=(4, 4), organize=(4, 4), control=(4, 4), direct=(2, 2), align=(2, 2), motivate=(2, 2)),
    ]
    data = compute(raters)
    # Others = manager (2) + three peers (4 on management, 2 on leadership)
    assert data["indices"][OTHERS]["management"] == {"score": 3.5, "n": 4}
    assert data["indices"][OTHERS]["leadership"] == {"score": 2.0, "n": 4}
    assert data["balance"] == {"value": -1.5, "label": "leans management"}
    # management exactly at the cut counts as strong
    assert data["quadrant"]["key"] == "bureaucracy_risk"
    assert data["self_quadrant"]["key"] == "strong_both"
    assert dimension(data, "plan")["gap"] == {"value": 1.5, "flag": "blind_spot", "label": "Blind spot"}


def test_the_quadrant_cut_is_inclusive_and_configurable() -> None:
    cut = Fraction(7, 2)
    assert quadrant_of(management=cut, leadership=cut, cut=cut) == "strong_both"
    assert quadrant_of(management=cut - Fraction(1, 100), leadership=cut, cut=cut) == "chaos_risk"
    assert quadrant_of(management=cut, leadership=Fraction(349, 100), cut=cut) == "bureaucracy_risk"
    assert quadrant_of(management=Fraction(1), leadership=Fraction(1), cut=cut) == "developing_both"
    assert quadrant_of(management=Fraction(3), leadership=Fraction(3), cut=Fraction(3)) == "strong_both"


def test_balance_and_gap_thresholds_use_the_exact_values() -> None:
    assert balance_label(Fraction(49, 100)) == "balanced"
    assert balance_label(Fraction(1, 2)) == "leans leadership"
    assert balance_label(Fraction(-1, 2)) == "leans management"
    assert gap_flag(Fraction(1, 2)) == "blind_spot"
    assert gap_flag(Fraction(-1, 2)) == "hidden_strength"
    assert gap_flag(Fraction(49, 100)) is None
    # self 4 against Others 3.55: a gap of 0.45 shows as 0.5 but is below the margin —
    # the flag follows the exact value
    data = compute([rater(SELF, default=4), *peers(11, default=4), *peers(9, default=3)])
    gap = dimension(data, "plan")["gap"]
    assert gap == {"value": 0.5, "flag": None, "label": None}


def test_kotters_pairs_face_each_management_process_with_its_leadership_counterpart() -> None:
    raters = peers(3, plan=(5, 5), direct=(2, 2), organize=(3, 3), align=(4, 4), control=(1, 1), motivate=(1, 1))
    pairs = compute(raters)["pairs"]
    assert [(p["management"]["key"], p["leadership"]["key"]) for p in pairs] == [
        ("plan", "direct"),
        ("organize", "align"),
        ("control", "motivate"),
    ]
    assert [p["gap"] for p in pairs] == [-3.0, 1.0, 0.0]
    assert pairs[0]["management_others"] == {"score": 5.0, "n": 3, "agreement": None}


def test_an_index_needs_every_dimension_of_its_side() -> None:
    raters = [*peers(3), rater(PEER, plan=(None, None))]
    assert OTHERS in compute(raters)["indices"]
    raters = [*peers(2), rater(PEER, plan=(None, None))]
    data = compute(raters)
    assert OTHERS not in data["indices"]
    assert data["balance"] is None and data["quadrant"] is None
    assert any("no Others point" in notice for notice in data["notices"])


# --- Agreement: a flag, from max(k, 5) anonymous raters ---------------------------------


def test_agreement_is_judged_from_five_anonymous_raters_never_fewer() -> None:
    divided = [rater(PEER, plan=(1, 1)), rater(PEER, plan=(5, 5))]
    four = compute([*divided, *peers(2, plan=(3, 3))])
    assert dimension(four, "plan")["others"]["agreement"] is None
    five = compute([*divided, *peers(3, plan=(3, 3))])
    # 1, 5, 3, 3, 3: population spread √(8/5) ≈ 1.26
    assert dimension(five, "plan")["others"]["agreement"] == DIVIDED
    assert dimension(five, "organize")["others"]["agreement"] == CONSISTENT
    # with k above five, k raters are needed
    assert (
        dimension(compute([*divided, *peers(3)], Rules(k=6, comment_min=6, quadrant_cut=Fraction(7, 2))), "plan")[
            "others"
        ]
        is None
    )


def test_a_spread_of_exactly_one_step_is_divided() -> None:
    # 2, 4, 2, 4 around 3: population spread exactly 1.0 (the manager is not counted)
    raters = [rater(MANAGER, plan=(3, 3)), *(rater(PEER, plan=(v, v)) for v in (2, 4, 2, 4, 3, 3))]
    just_below = compute(raters)
    assert dimension(just_below, "plan")["others"]["agreement"] == CONSISTENT
    exact = compute([rater(PEER, plan=(v, v)) for v in (2, 4, 2, 4, 2, 4)])
    assert dimension(exact, "plan")["others"]["agreement"] == DIVIDED


def test_no_spread_minimum_or_maximum_of_anonymous_raters_is_stored() -> None:
    data = compute([rater(MANAGER), *(rater(PEER, plan=(v, v)) for v in (1, 5, 2, 4, 3, 3))])
    text = json.dumps(data)
    for word in ('"sd"', "spread", '"min"', '"max"', "stdev", "range"):
        assert word not in text


# --- Comments -------------------------------------------------------------------------


def test_anonymous_comments_appear_from_exactly_the_comment_minimum() -> None:
    rules = Rules(k=3, comment_min=4, quadrant_cut=Fraction(7, 2))
    commenting = [rater(PEER, comments={"keep_doing": f"keep {n}"}) for n in range(3)]
    assert compute(commenting, rules)["comments"] == []
    four = compute([*commenting, rater(PEER)], rules)
    assert [block["question"] for block in four["comments"]] == ["keep_doing"]
    assert sorted(entry["text"] for entry in four["comments"][0]["entries"]) == ["keep 0", "keep 1", "keep 2"]
    assert {entry["label"] for entry in four["comments"][0]["entries"]} == {"Peers"}


def test_comments_sit_under_their_own_question_with_group_labels_only_from_the_minimum() -> None:
    raters = [
        rater(SELF, comments={"management": "I plan well."}),
        rater(MANAGER, comments={"leadership": "Explains the why."}),
        *(rater(PEER, comments={"start_doing": f"start {n}"}) for n in range(3)),
        *(rater(DIRECT_REPORT, comments={"start_doing": f"report {n}"}) for n in range(3)),
    ]
    comments = {block["question"]: block["entries"] for block in compute(raters)["comments"]}
    assert comments["management"] == [{"label": "Self", "text": "I plan well."}]
    assert comments["leadership"] == [{"label": "Manager", "text": "Explains the why."}]
    labelled = {(entry["label"], entry["text"][:5]) for entry in comments["start_doing"]}
    assert labelled == {("Peers", "start"), ("Direct reports", "repor")}


def test_no_group_is_named_when_the_unnamed_rest_would_be_too_few() -> None:
    raters = [
        *(rater(PEER, comments={"keep_doing": "p"}) for _ in range(3)),
        rater(OUTSIDE, comments={"keep_doing": "o"}),
    ]
    entries = compute(raters)["comments"][0]["entries"]
    assert {entry["label"] for entry in entries} == {None}


def test_anonymous_comments_do_not_keep_the_raters_order_across_questions() -> None:
    raters = [
        rater(PEER, comments={"management": f"m{n}", "leadership": f"l{n}", "keep_doing": f"k{n}"}) for n in range(8)
    ]
    orders = set()
    for seed in range(20):
        comments = comments_filter(raters=raters, rules=RULES, rng=random.Random(seed))
        by_question: dict[str, list[int]] = {}
        for comment in comments:
            by_question.setdefault(comment.question, []).append(comment.rater)
        orders.add(by_question["management"] == by_question["leadership"] == by_question["keep_doing"])
    assert orders == {False}


# --- The stored JSON ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Fraction(225, 100), 2.3),
        (Fraction(224, 100), 2.2),
        (Fraction(-225, 100), -2.3),
        (Fraction(-4, 100), 0.0),
        (Fraction(11, 3), 3.7),
        (Fraction(7, 2), 3.5),
    ],
)
def test_scores_are_rounded_once_to_one_decimal_half_away_from_zero(value: Fraction, shown: float) -> None:
    assert one_decimal(value) == shown


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in _floats(item)]
    if isinstance(value, list):
        return [f for item in value for f in _floats(item)]
    return []


def test_no_unrounded_value_is_stored() -> None:
    generator = random.Random(5)
    raters = [
        RaterAnswers(
            group=generator.choice([SELF, MANAGER, PEER, PEER, DIRECT_REPORT, OUTSIDE]),
            ratings={item.code: generator.choice([1, 2, 3, 4, 5, None]) for d in DIMENSIONS for item in d.items},
        )
        for _ in range(14)
    ]
    data = compute(raters)
    floats = _floats(data)
    assert floats
    assert all(round(value, 1) == value for value in floats)
    assert data["format"] == REPORT_FORMAT


def test_with_fewer_than_k_anonymous_raters_only_self_and_manager_are_shown_and_the_report_says_why() -> None:
    data = compute([rater(SELF, default=5), rater(MANAGER, default=2), *peers(2)])
    assert data["anonymous_shown"] is False
    assert all(d["others"] is None for d in data["dimensions"])
    assert set(groups(data, "plan")) == {SELF, MANAGER}
    assert data["notices"][0].startswith("Fewer than 3 peers, direct reports and outside raters answered")
    assert data["self_quadrant"]["key"] == "strong_both" and data["quadrant"] is None


def test_the_dropped_notice_is_honest_about_comments_of_dropped_raters() -> None:
    commenting = rater(DIRECT_REPORT, comments={"keep_doing": "the weekly plan"})
    with_comments = compute([*peers(3), commenting])
    assert "Their written comments may still appear" in with_comments["notices"][0]
    without = compute([*peers(3), rater(DIRECT_REPORT)])
    assert without["notices"][0].startswith("Some ratings count in no score")
    assert "comments" not in without["notices"][0]
    for notice in with_comments["notices"] + without["notices"]:
        assert "direct report" not in notice.lower()


# --- Trend ----------------------------------------------------------------------------


def _report(level: int, *, k: int = 3, format_: int = REPORT_FORMAT) -> dict[str, Any]:
    data = compute(peers(4, default=level), Rules(k=k, comment_min=k, quadrant_cut=Fraction(7, 2)))
    data["format"] = format_
    data["cycle"] = {"name": "Autumn"}
    return data


def test_the_trend_compares_one_decimal_figures_both_reports_show() -> None:
    trend = trend_compute(current=_report(4), previous=_report(2))
    assert trend is not None
    assert trend["cycle"] == "Autumn"
    assert trend["indices"]["management"] == {"before": 2.0, "now": 4.0, "change": 2.0}
    assert trend["dimensions"][0] == {"key": "plan", "name": "Plan", "before": 2.0, "now": 4.0, "change": 2.0}


def test_no_trend_from_a_report_under_a_smaller_k_or_an_older_format() -> None:
    assert trend_compute(current=_report(4, k=4), previous=_report(2, k=3)) is None
    assert trend_compute(current=_report(4, k=3), previous=_report(2, k=4)) is not None
    assert trend_compute(current=_report(4), previous=_report(2, format_=1)) is None
