"""The scoring rules, one example each, with the numbers worked out by hand."""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest

from reports import scoring
from reports.scoring import (
    CONSISTENT,
    DIVIDED,
    REPORT_FORMAT,
    DimensionSpec,
    ItemFigure,
    ItemSpec,
    RaterAnswers,
    Rules,
    anonymity_filter,
    balance_label,
    comments_filter,
    gap_flag,
    one_decimal,
    quadrant_of,
    rating_value,
    report_compute,
    report_data,
    safe_base_build,
    trend_compute,
)
from surveys.vocabulary import (
    COMBINED,
    DIRECT_REPORT,
    MANAGER,
    NOMINATED_OUTSIDE,
    OTHERS,
    OUTSIDE,
    PEER,
    SELF,
    SMALL_GROUPS,
)
from tests.reports.probe import KEYS, SPECS

DIMENSIONS = SPECS
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


# --- Rules and stored ratings ---------------------------------------------------------


def test_k_may_be_as_small_as_two_and_the_comment_minimum_as_small_as_k() -> None:
    rules = Rules(k=2, comment_min=2, quadrant_cut=Fraction(7, 2))
    assert (rules.k, rules.comment_min, rules.agreement_min) == (2, 2, 5)
    with pytest.raises(ValueError, match=r"^k must be at least 2$"):
        Rules(k=1, comment_min=2, quadrant_cut=Fraction(7, 2))
    with pytest.raises(ValueError, match=r"^the comment minimum must not be below k$"):
        Rules(k=3, comment_min=2, quadrant_cut=Fraction(7, 2))


@pytest.mark.parametrize(
    ("stored", "value"),
    [(1, 1), (5, 5), (0, None), (6, None), (None, None), (True, None), (3.0, None), ("3", None)],
)
def test_a_stored_rating_counts_only_as_a_whole_number_from_one_to_five(stored: object, value: int | None) -> None:
    assert rating_value(stored) == value


def test_a_stored_rating_outside_the_scale_counts_in_no_figure() -> None:
    # a fourth peer's 6 on plan-1 is not an answer: the item keeps the three 4s
    raters = [*peers(3, plan=(4, 4)), RaterAnswers(group=PEER, ratings={"plan-1": 6, "plan-2": 4})]
    items = {item["code"]: item["others"] for item in dimension(compute(raters), "plan")["items"]}
    assert items == {"plan-1": {"score": 4.0, "n": 3}, "plan-2": {"score": 4.0, "n": 4}}


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


def test_the_filter_refuses_groups_and_answers_of_different_lengths() -> None:
    with pytest.raises(ValueError, match=r"^groups and answered must have the same length$"):
        anonymity_filter(groups=[PEER, PEER, PEER], answered=[True, True], k=2)


def test_the_fold_dropped_switch_really_leaks_dropped_raters_into_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # The switch is the known leak that anonymity attacks are proven against; it must leak.
    monkeypatch.setattr(scoring, "_TEST_ONLY_LEAK", "fold_dropped")
    selection = anonymity_filter(groups=[MANAGER, PEER, PEER, PEER, DIRECT_REPORT], answered=[True] * 5, k=3)
    assert selection.labels[OTHERS] == frozenset({0, 1, 2, 3, 4})
    assert selection.dropped == (DIRECT_REPORT,)


def test_the_safe_base_keeps_each_figure_under_its_item_and_label() -> None:
    # given three peers answering 4 and 2 on plan, and a fourth saying "can't say" on plan-1
    raters = [*peers(3, plan=(4, 2)), rater(PEER, plan=(None, 2))]
    # when
    base = safe_base_build(raters=raters, dimensions=DIMENSIONS, rules=RULES)
    # then
    assert base.item("plan-1", PEER) == ItemFigure(
        code="plan-1", label=PEER, score=Fraction(4), raters=frozenset({0, 1, 2})
    )
    assert base.item("plan-2", OTHERS) == ItemFigure(
        code="plan-2", label=OTHERS, score=Fraction(2), raters=frozenset({0, 1, 2, 3})
    )
    assert base.item("plan-1", MANAGER) is None


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


def test_items_are_numbered_in_questionnaire_order_across_dimensions() -> None:
    result = report_compute(raters=peers(3), dimensions=DIMENSIONS, rules=RULES, rng=random.Random(1))
    numbered = [(item.spec.code, item.position) for d in result.dimensions for item in d.items]
    assert numbered == [(f"{key}-{n}", 2 * index + n) for index, (key, _, _) in enumerate(KEYS) for n in (1, 2)]


def test_items_with_equal_scores_are_listed_in_questionnaire_order() -> None:
    data = compute(peers(3))
    assert [item["code"] for item in data["items"]["highest"]] == [
        "plan-1",
        "plan-2",
        "organize-1",
        "organize-2",
        "control-1",
    ]
    assert [item["code"] for item in data["items"]["lowest"]] == [
        "control-2",
        "direct-1",
        "direct-2",
        "align-1",
        "align-2",
    ]


def test_a_listed_item_carries_its_text_dimension_and_side() -> None:
    data = compute(peers(3, direct=(5, 4)))
    assert data["items"]["highest"][0] == {
        "code": "direct-1",
        "text": "direct first",
        "dimension": "Direct",
        "side": "leadership",
        "score": 5.0,
        "n": 3,
    }


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


def test_a_pair_is_listed_only_with_both_sides_and_its_gap_only_with_both_others_scores() -> None:
    # given a questionnaire without "direct" (pair 1 has no leadership side) and no answer on control
    without_direct = tuple(d for d in DIMENSIONS if d.key != "direct")
    raters = peers(3, organize=(4, 4), align=(2, 2), control=(None, None))
    # when
    result = report_compute(raters=raters, dimensions=without_direct, rules=RULES, rng=random.Random(1))
    pairs = report_data(result=result)["pairs"]
    # then
    assert pairs == [
        {
            "pair": 2,
            "management": {"key": "organize", "name": "Organize"},
            "leadership": {"key": "align", "name": "Align"},
            "management_others": {"score": 4.0, "n": 3, "agreement": None},
            "leadership_others": {"score": 2.0, "n": 3, "agreement": None},
            "gap": -2.0,
        },
        {
            "pair": 3,
            "management": {"key": "control", "name": "Control"},
            "leadership": {"key": "motivate", "name": "Motivate"},
            "management_others": None,
            "leadership_others": {"score": 3.0, "n": 3, "agreement": None},
            "gap": None,
        },
    ]


def test_the_quadrants_are_stored_with_their_labels() -> None:
    raters = [
        rater(SELF, default=5),
        *peers(3, plan=(4, 4), organize=(4, 4), control=(4, 4), direct=(2, 2), align=(2, 2), motivate=(2, 2)),
    ]
    data = compute(raters)
    assert data["quadrant"] == {"key": "bureaucracy_risk", "label": "Strong management only — bureaucracy risk"}
    assert data["self_quadrant"] == {"key": "strong_both", "label": "Strong on both"}


def test_a_dimension_is_stored_with_its_groups_others_self_gap_and_items() -> None:
    raters = [rater(SELF, plan=(5, 4)), rater(MANAGER, plan=(2, 2)), *peers(3, plan=(4, 3))]
    # Others: plan-1 (2 + 4 + 4 + 4) / 4 = 3.5, plan-2 (2 + 3 + 3 + 3) / 4 = 2.75; the dimension
    # (3.5 + 2.75) / 2 = 3.125; self (5 + 4) / 2 = 4.5; gap 4.5 - 3.125 = 1.375
    assert dimension(compute(raters), "plan") == {
        "key": "plan",
        "name": "Plan",
        "side": "management",
        "pair": 1,
        "groups": [
            {"group": SELF, "label": "Self", "score": 4.5, "n": 1},
            {"group": MANAGER, "label": "Manager", "score": 2.0, "n": 1},
            {"group": PEER, "label": "Peers", "score": 3.5, "n": 3},
        ],
        "others": {"score": 3.1, "n": 4, "agreement": None},
        "self": {"score": 4.5, "n": 1},
        "gap": {"value": 1.4, "flag": "blind_spot", "label": "Blind spot"},
        "items": [
            {"code": "plan-1", "text": "plan first", "others": {"score": 3.5, "n": 4}},
            {"code": "plan-2", "text": "plan second", "others": {"score": 2.8, "n": 4}},
        ],
    }


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


def test_agreement_reads_every_item_with_an_others_figure_after_one_without() -> None:
    # plan-1: two peers answer, too few for a figure; plan-2: five peers answer 1, 5, 1, 5, 3,
    # which are also their own plan scores: around 3, population spread √(16/5) ≈ 1.79
    raters = [rater(PEER, plan=answers) for answers in ((1, 1), (5, 5), (None, 1), (None, 5), (None, 3))]
    plan = dimension(compute(raters), "plan")
    assert plan["items"][0]["others"] is None
    assert plan["others"]["agreement"] == DIVIDED


def test_the_sd_switch_really_stores_the_spread_of_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # The switch is the known leak that anonymity attacks are proven against; it must leak.
    monkeypatch.setattr(scoring, "_TEST_ONLY_LEAK", "sd")
    # Others on plan: the manager's 3 and the peers' 1, 5, 3 — around 3, spread √(8/4) = √2
    data = compute([rater(MANAGER), *(rater(PEER, plan=(v, v)) for v in (1, 5, 3))])
    assert dimension(data, "plan")["others"]["sd"] == 1.41
    assert dimension(data, "organize")["others"]["sd"] == 0.0


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


def test_groups_are_named_when_the_unnamed_rest_reaches_the_comment_minimum() -> None:
    # three peers are named; two direct reports and one outside rater make an unnamed rest of 3
    raters = [
        *(rater(PEER, comments={"keep_doing": "p"}) for _ in range(3)),
        *(rater(DIRECT_REPORT, comments={"keep_doing": "d"}) for _ in range(2)),
        rater(OUTSIDE, comments={"keep_doing": "o"}),
    ]
    entries = compute(raters)["comments"][0]["entries"]
    labelled = Counter((entry["text"], entry["label"]) for entry in entries)
    assert labelled == Counter({("p", "Peers"): 3, ("d", None): 2, ("o", None): 1})


def test_comments_are_stored_under_their_question_and_title_self_before_manager() -> None:
    raters = [rater(MANAGER, comments={"management": "Clear plans."}), rater(SELF, comments={"management": "I plan."})]
    assert compute(raters)["comments"] == [
        {
            "question": "management",
            "title": "Management",
            "entries": [{"label": "Self", "text": "I plan."}, {"label": "Manager", "text": "Clear plans."}],
        }
    ]


def test_comments_are_shuffled_with_the_random_source_given_or_the_systems() -> None:
    raters = [rater(PEER, comments={"keep_doing": f"k{n}"}) for n in range(10)]
    # given one source, the report and the filter shuffle alike
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=RULES, rng=random.Random(7))
    assert result.comments == comments_filter(raters=raters, rules=RULES, rng=random.Random(7))
    # given none, the system's randomness shuffles them, and none is lost
    texts = sorted(comment.text for comment in comments_filter(raters=raters, rules=RULES))
    assert texts == sorted(f"k{n}" for n in range(10))


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


FEW_ANONYMOUS = (
    "Fewer than 3 peers, direct reports and outside raters answered, so this report shows self and manager "
    "scores only: any figure from so few anonymous raters could reveal who said what."
)
SOME_DROPPED = (
    "Some ratings count in no score: on those questions fewer than 3 people of a group answered, and they "
    "could not be combined with other small groups."
)
UNNAMED_COMMENTS = " Their written comments may still appear, without a group name, among the comments."
NO_OTHERS_POINT = (
    "There is no Others point on the balance plane: on at least one dimension too few anonymous raters "
    "answered for an Others score."
)


def test_a_report_where_every_answer_counts_carries_no_notice() -> None:
    assert compute([rater(SELF), rater(MANAGER), *peers(3)])["notices"] == []


def test_each_notice_says_in_full_why_figures_are_missing() -> None:
    assert compute([rater(SELF), *peers(2)])["notices"] == [FEW_ANONYMOUS]
    commenting = rater(DIRECT_REPORT, comments={"keep_doing": "the weekly plan"})
    assert compute([*peers(3), commenting])["notices"] == [SOME_DROPPED + UNNAMED_COMMENTS]
    assert compute(peers(3, plan=(None, None)))["notices"] == [NO_OTHERS_POINT]
    assert compute([*peers(2), rater(PEER, plan=(None, None))])["notices"] == [SOME_DROPPED, NO_OTHERS_POINT]


def test_a_dropped_group_is_noted_only_on_the_dimensions_it_was_dropped_from() -> None:
    lone = RaterAnswers(group=DIRECT_REPORT, ratings={"plan-2": 4})
    result = report_compute(raters=[*peers(3), lone], dimensions=DIMENSIONS, rules=RULES, rng=random.Random(1))
    assert {d.spec.key: d.dropped for d in result.dimensions} == {
        "plan": (DIRECT_REPORT,),
        "organize": (),
        "control": (),
        "direct": (),
        "align": (),
        "motivate": (),
    }


def test_the_report_states_the_rules_it_was_built_under() -> None:
    data = compute(peers(3), Rules(k=3, comment_min=4, quadrant_cut=Fraction(7, 2)))
    header = {key: data[key] for key in ("format", "k", "comment_min", "agreement_min", "quadrant_cut")}
    assert header == {"format": REPORT_FORMAT, "k": 3, "comment_min": 4, "agreement_min": 5, "quadrant_cut": 3.5}


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


def test_the_report_carries_the_trend_only_when_given_a_previous_report() -> None:
    result = report_compute(raters=peers(4, default=4), dimensions=DIMENSIONS, rules=RULES, rng=random.Random(1))
    trend = report_data(result=result, previous=_report(2))["trend"]
    assert trend is not None
    assert trend["cycle"] == "Autumn"
    assert trend["indices"] == {
        "management": {"before": 2.0, "now": 4.0, "change": 2.0},
        "leadership": {"before": 2.0, "now": 4.0, "change": 2.0},
    }
    assert report_data(result=result)["trend"] is None


def test_the_trend_shows_the_change_of_balance() -> None:
    # before: management 4, leadership 2, a balance of -2; now 3 and 3, a balance of 0
    previous = compute(
        peers(4, plan=(4, 4), organize=(4, 4), control=(4, 4), direct=(2, 2), align=(2, 2), motivate=(2, 2))
    )
    trend = trend_compute(current=compute(peers(4)), previous=previous)
    assert trend is not None
    assert trend["balance"] == {"before": -2.0, "now": 0.0, "change": 2.0}
    assert trend["indices"] == {
        "management": {"before": 4.0, "now": 3.0, "change": -1.0},
        "leadership": {"before": 2.0, "now": 3.0, "change": 1.0},
    }


def test_a_previous_report_without_an_others_point_still_gives_the_dimensions_it_showed() -> None:
    # given a previous report where plan had too few answers (no Others index, no balance)
    previous = compute([*peers(2), rater(PEER, plan=(None, None))])
    previous["cycle"] = {"name": "Spring"}
    # when
    trend = trend_compute(current=compute(peers(4, default=4)), previous=previous)
    # then
    assert trend == {
        "cycle": "Spring",
        "indices": {},
        "balance": None,
        "dimensions": [
            {"key": key, "name": key.title(), "before": 3.0, "now": 4.0, "change": 1.0}
            for key in ("organize", "control", "direct", "align", "motivate")
        ],
    }


def test_no_trend_when_the_previous_report_showed_no_others_figure() -> None:
    assert trend_compute(current=compute(peers(4)), previous=compute(peers(2))) is None


def test_a_trend_across_a_changed_questionnaire_compares_the_indices_and_balance_only() -> None:
    renamed = tuple(
        DimensionSpec(key=f"old_{d.key}", name=d.name, side=d.side, pair=d.pair, items=d.items) for d in DIMENSIONS
    )
    result = report_compute(raters=peers(4, default=2), dimensions=renamed, rules=RULES, rng=random.Random(1))
    previous = report_data(result=result)
    previous["cycle"] = {"name": "Spring"}
    assert trend_compute(current=compute(peers(4, default=4)), previous=previous) == {
        "cycle": "Spring",
        "indices": {
            "management": {"before": 2.0, "now": 4.0, "change": 2.0},
            "leadership": {"before": 2.0, "now": 4.0, "change": 2.0},
        },
        "balance": {"before": 0.0, "now": 0.0, "change": 0.0},
        "dimensions": [],
    }


def test_the_trend_counts_a_figure_a_report_does_not_carry_as_not_shown() -> None:
    previous = {"format": REPORT_FORMAT, "k": 3, "balance": {"value": -0.5}}
    current = {"format": REPORT_FORMAT, "k": 3, "balance": {"value": 0.5}}
    assert trend_compute(current=current, previous=previous) == {
        "cycle": "",
        "indices": {},
        "balance": {"before": -0.5, "now": 0.5, "change": 1.0},
        "dimensions": [],
    }


def test_a_spread_of_exactly_one_step_is_divided_even_where_floats_fall_short() -> None:
    # given: five questions, six peers whose own means are 1, 1, 1, 7/5, 7/5 and 19/5 —
    # an exact population variance of 1, which floating point puts a hair below it
    five = DimensionSpec(
        key="plan", name="Plan", side="management", pair=1, items=tuple(ItemSpec(f"p-{n}", f"p {n}") for n in range(5))
    )
    answers = [(1, 1, 1, 1, 1)] * 3 + [(1, 1, 1, 2, 2)] * 2 + [(4, 4, 4, 4, 3)]
    raters = [RaterAnswers(group=PEER, ratings={f"p-{n}": v for n, v in enumerate(row)}) for row in answers]
    # when
    result = report_compute(raters=raters, dimensions=(five,), rules=RULES, rng=random.Random(1))
    # then
    assert result.dimensions[0].agreement == DIVIDED


def test_answers_stored_as_smaller_groups_are_combined_never_shown_on_their_own() -> None:
    # given: three answers stored as "smaller groups" at close (each from a group with
    # fewer than k answers), one direct report and three peers, k = 3
    raters = [*(rater(SMALL_GROUPS) for _ in range(3)), rater(DIRECT_REPORT), *peers(3)]
    # when
    data = compute(raters)
    # then: the four small answers stand together as one combined figure beside the peers
    plan = groups(data, "plan")
    assert set(plan) == {PEER, COMBINED}
    assert plan[COMBINED]["n"] == 4
    assert dimension(data, "plan")["others"]["n"] == 7
    # and with only two of them, they are too few to combine and count nowhere
    two = compute([*(rater(SMALL_GROUPS) for _ in range(2)), *peers(3)])
    assert set(groups(two, "plan")) == {PEER}
    assert dimension(two, "plan")["others"]["n"] == 3


# --- Outside raters the subject nominated ---------------------------------------------
# The subject reads their own report once it is released, and in a nominating cycle they
# chose their outside raters: k-1 of those could be addresses of their own. Pooled with
# one real rater, the pool's figure minus their own known answers would be that rater's.


def _lone_direct_report_beside_nominated_outside(answer: int, comment: str, nominated: int) -> dict[str, Any]:
    fakes = [
        rater(NOMINATED_OUTSIDE, default=3, comments={"keep_doing": f"fake comment {number}"})
        for number in range(nominated)
    ]
    real = rater(DIRECT_REPORT, default=answer, comments={"keep_doing": comment})
    return compute([rater(SELF), rater(MANAGER), *peers(3), *fakes, real])


@pytest.mark.parametrize("nominated", [2, 3, 5])
def test_nominated_outside_raters_are_never_combined_with_a_real_rater(nominated: int) -> None:
    # The lone direct report answers 1 or 5: nothing the subject can read may change with it.
    low = _lone_direct_report_beside_nominated_outside(1, "the one real comment", nominated)
    high = _lone_direct_report_beside_nominated_outside(5, "the one real comment", nominated)
    assert json.dumps(low, sort_keys=True) == json.dumps(high, sort_keys=True)
    shown = {group for dim in low["dimensions"] for group in (g["group"] for g in dim["groups"])}
    assert COMBINED not in shown
    # however many answered, they count nowhere, not even as a group of their own
    assert OUTSIDE not in shown
    assert NOMINATED_OUTSIDE not in shown


@pytest.mark.parametrize("answer", [1, 5])
def test_one_real_nominated_rater_among_the_subjects_own_addresses_changes_nothing_the_subject_reads(
    answer: int,
) -> None:
    # k-1 addresses of the subject's own and one real person, all nominated: a figure of the
    # three, minus the two answers the subject gave, would be the real one's
    def report(real_answer: int) -> dict[str, Any]:
        fakes = [rater(NOMINATED_OUTSIDE, default=3, comments={"keep_doing": "fake"}) for _ in range(RULES.k - 1)]
        real = rater(NOMINATED_OUTSIDE, default=real_answer, comments={"keep_doing": "the real one"})
        return compute([rater(SELF), rater(MANAGER), *peers(3), *fakes, real])

    assert json.dumps(report(answer), sort_keys=True) == json.dumps(report(3), sort_keys=True)
    shown = [entry["text"] for question in report(answer)["comments"] for entry in question["entries"]]
    assert "the real one" not in shown and "fake" not in shown


def test_the_comment_of_a_lone_real_rater_is_never_left_among_nominated_ones() -> None:
    # peers 3 (named), the direct report alone, 2 nominated: the unlabelled comments would
    # be the two fakes and the real one; counted without the fakes, the pool is too small
    # for a label, so nothing tells the real one apart from the peers'
    data = _lone_direct_report_beside_nominated_outside(4, "the one real comment", 2)
    (keep_doing,) = [question for question in data["comments"] if question["question"] == "keep_doing"]
    texts = {entry["text"]: entry["label"] for entry in keep_doing["entries"]}
    assert "the one real comment" in texts
    # no label at all: the real comment could be any of the four real anonymous raters'
    assert set(texts.values()) == {None}


def test_a_lone_real_rater_beside_nominated_ones_gets_no_comment_shown() -> None:
    # without the peers, the only real anonymous rater is the direct report: no comment
    fakes = [rater(NOMINATED_OUTSIDE, comments={"keep_doing": "fake"}) for _ in range(4)]
    real = rater(DIRECT_REPORT, comments={"keep_doing": "the one real comment"})
    data = compute([rater(SELF), rater(MANAGER), *fakes, real])
    shown = [entry["text"] for question in data["comments"] for entry in question["entries"]]
    assert "the one real comment" not in shown


def test_the_agreement_flag_never_rests_on_nominated_outside_raters() -> None:
    # five nominated raters beside three real peers: counted with the fakes there would be
    # eight, enough for a flag that then describes how the three real ones spread
    fakes = [rater(NOMINATED_OUTSIDE, default=3) for _ in range(5)]
    real = [rater(PEER, default=1), rater(PEER, default=5), rater(PEER, default=5)]
    divided = compute([rater(MANAGER), *fakes, *real])
    assert [dim["others"]["agreement"] for dim in divided["dimensions"] if dim["others"]] != []
    assert all(dim["others"]["agreement"] is None for dim in divided["dimensions"] if dim["others"])
