"""Example tests for each score rule, with numbers worked out by hand."""

from __future__ import annotations

import random

import pytest

from reports.scoring import (
    DimensionSpec,
    ItemSpec,
    RaterAnswers,
    Rules,
    anonymity_filter,
    balance_label,
    comments_filter,
    gap_flag,
    quadrant_of,
    report_compute,
    report_data,
    trend_compute,
)

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
RULES = Rules(k=3, comment_min=3, quadrant_cut=3.5)


def rater(group: str, default: int | None = 3, comments: dict | None = None, **by_key: tuple) -> RaterAnswers:
    """A rater answering ``default`` everywhere except the dimensions given as (item 1, item 2)."""
    ratings: dict[str, int | None] = {}
    for key, _, _ in KEYS:
        first, second = by_key.get(key, (default, default))
        ratings[f"{key}-1"] = first
        ratings[f"{key}-2"] = second
    return RaterAnswers(group=group, ratings=ratings, comments=comments or {})


def compute(raters: list[RaterAnswers], rules: Rules = RULES) -> dict:
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(1))
    return report_data(result=result)


def dimension(data: dict, key: str) -> dict:
    return next(d for d in data["dimensions"] if d["key"] == key)


def test_rater_score_is_mean_of_answered_items_and_group_score_weighs_raters_equally() -> None:
    # peer A: plan items 4 and can't say -> 4.0; peer B: 2, 3 -> 2.5; peer C: 5, 5 -> 5.0
    data = compute(
        [
            rater("peer", plan=(4, None)),
            rater("peer", plan=(2, 3)),
            rater("peer", plan=(5, 5)),
        ]
    )
    peers = next(g for g in dimension(data, "plan")["groups"] if g["group"] == "peer")
    assert peers == {"group": "peer", "label": "Peers", "score": round((4.0 + 2.5 + 5.0) / 3, 2), "n": 3}


def test_others_is_manager_plus_shown_anonymous_never_self() -> None:
    data = compute(
        [
            rater("self", plan=(5, 5)),
            rater("manager", plan=(1, 1)),
            rater("peer", plan=(2, 2)),
            rater("peer", plan=(3, 3)),
            rater("peer", plan=(4, 4)),
        ]
    )
    plan = dimension(data, "plan")
    # (1 + 2 + 3 + 4) / 4 = 2.5 from four raters; self's 5 is not in it.
    assert plan["others"]["score"] == 2.5
    assert plan["others"]["n"] == 4
    assert plan["self"] == {"score": 5.0, "n": 1}


def test_indices_balance_and_quadrant() -> None:
    # Others: management dimensions 4, 4, 4 -> 4.0; leadership 3, 3, 2 -> 2.67
    anonymous = [
        rater("peer", plan=(4, 4), organize=(4, 4), control=(4, 4), direct=(3, 3), align=(3, 3), motivate=(2, 2))
        for _ in range(3)
    ]
    data = compute(anonymous)
    assert data["indices"]["others"]["management"] == {"score": 4.0, "n": 3}
    assert data["indices"]["others"]["leadership"] == {"score": 2.67, "n": 3}
    assert data["balance"] == {"value": -1.33, "label": "leans management"}
    assert data["quadrant"]["key"] == "bureaucracy_risk"


@pytest.mark.parametrize(
    ("management", "leadership", "expected"),
    [
        (3.5, 3.5, "strong_both"),
        (3.4, 4.0, "chaos_risk"),
        (4.0, 3.49, "bureaucracy_risk"),
        (2.0, 2.0, "developing_both"),
    ],
)
def test_quadrant_cut(management: float, leadership: float, expected: str) -> None:
    assert quadrant_of(management=management, leadership=leadership, cut=3.5) == expected


def test_balance_band_and_gap_flags() -> None:
    assert balance_label(0.49) == "balanced"
    assert balance_label(-0.49) == "balanced"
    assert balance_label(0.5) == "leans leadership"
    assert balance_label(-0.5) == "leans management"
    assert gap_flag(0.5) == "blind_spot"
    assert gap_flag(-0.5) == "hidden_strength"
    assert gap_flag(0.4) is None


def test_self_others_gap_and_agreement_flag() -> None:
    data = compute(
        [
            rater("self", plan=(5, 5)),
            rater("peer", plan=(1, 1)),
            rater("peer", plan=(3, 3)),
            rater("peer", plan=(5, 5)),
        ]
    )
    plan = dimension(data, "plan")
    # Others mean 3.0, self 5.0 -> gap +2.0, a blind spot.
    assert plan["gap"] == {"value": 2.0, "flag": "blind_spot", "label": "Blind spot"}
    # population SD of 1, 3, 5 = sqrt(8/3) = 1.63 -> strong disagreement
    assert plan["others"]["sd"] == 1.63
    assert plan["others"]["disagreement"] is True
    organize = dimension(data, "organize")
    assert organize["others"]["sd"] == 0.0
    assert organize["others"]["disagreement"] is False


def test_kotter_pairs_show_the_gap_inside_each_pair() -> None:
    data = compute([rater("peer", plan=(2, 2), direct=(4, 5)) for _ in range(3)])
    first = next(pair for pair in data["pairs"] if pair["pair"] == 1)
    assert first["management"]["key"] == "plan"
    assert first["leadership"]["key"] == "direct"
    assert first["gap"] == 2.5


def test_small_groups_are_pooled_when_the_pool_reaches_k() -> None:
    data = compute([rater("peer"), rater("peer"), rater("direct_report"), rater("peer", plan=(None, None))])
    plan = dimension(data, "plan")
    labels = [group["group"] for group in plan["groups"]]
    assert labels == ["pooled"]
    assert plan["groups"][0]["n"] == 3
    assert plan["others"]["n"] == 3


def test_a_small_group_next_to_a_shown_group_is_dropped_not_folded_into_others() -> None:
    # three peers (shown) and one direct report: Others minus Peers would be that one person.
    data = compute(
        [
            rater("peer", plan=(2, 2)),
            rater("peer", plan=(2, 2)),
            rater("peer", plan=(2, 2)),
            rater("direct_report", plan=(5, 5)),
        ]
    )
    plan = dimension(data, "plan")
    assert [group["group"] for group in plan["groups"]] == ["peer"]
    assert plan["others"] == {"score": 2.0, "n": 3, "sd": 0.0, "disagreement": False}
    # the notice says answers were left out without naming whose: "direct reports" would
    # tell the reader that the lone direct report answered
    assert any("Some answers are not shown" in notice for notice in data["notices"])
    assert not any("direct report" in notice.lower() for notice in data["notices"])


def test_below_k_anonymous_shows_self_and_manager_only_and_says_why() -> None:
    data = compute([rater("self", default=4), rater("manager", default=2), rater("peer"), rater("peer")])
    assert "self and manager scores only" in data["notices"][0]
    plan = dimension(data, "plan")
    assert [group["group"] for group in plan["groups"]] == ["self", "manager"]
    assert plan["others"] is None
    assert data["balance"] is None
    assert data["indices"] == {"self": {"management": {"score": 4.0, "n": 1}, "leadership": {"score": 4.0, "n": 1}}}
    assert data["items"] == {"shown": 0, "highest": [], "lowest": []}


def test_items_need_k_anonymous_answers_and_list_highest_and_lowest_five() -> None:
    raters = [rater("peer", plan=(5, None), motivate=(1, 2)) for _ in range(2)]
    raters.append(rater("peer", plan=(5, 4), motivate=(1, 2)))
    data = compute(raters)
    codes_shown = {item["code"] for item in data["items"]["highest"] + data["items"]["lowest"]}
    # plan-2 was answered by only one peer: no figure. plan-1 is not listed either: the
    # Plan figure (5 + 5 + 4.5) / 3 beside plan-1 (5, n=3) would give away that the one
    # peer who answered plan-2 rated it 1 lower than plan-1.
    assert "plan-2" not in codes_shown
    assert "plan-1" not in codes_shown
    assert dimension(data, "plan")["others"] == {"score": 4.83, "n": 3, "sd": 0.24, "disagreement": False}
    assert data["items"]["shown"] == 10
    assert data["items"]["highest"][0] == {
        "code": "organize-1",
        "text": "organize first",
        "dimension": "Organize",
        "side": "management",
        "score": 3.0,
        "n": 3,
    }
    assert [item["code"] for item in data["items"]["lowest"][:2]] == ["motivate-1", "motivate-2"]
    assert len(data["items"]["highest"]) == 5
    assert len(data["items"]["lowest"]) == 5


def test_comments_need_the_threshold_and_group_labels_need_k() -> None:
    raters = [
        rater("self", comments={"keep_doing": "my own view"}),
        rater("peer", comments={"keep_doing": "peer one"}),
        rater("peer", comments={"keep_doing": "peer two"}),
        rater("peer", comments={"keep_doing": "peer three"}),
        rater("direct_report", comments={"keep_doing": "report one"}),
        rater("direct_report", comments={"keep_doing": "report two"}),
        rater("direct_report", comments={"keep_doing": "report three"}),
    ]
    comments = comments_filter(raters=raters, rules=Rules(k=3, comment_min=5, quadrant_cut=3.5))
    labels = {comment.text: comment.label for comment in comments}
    assert labels["my own view"] == "Self"
    assert labels["peer one"] == "Peers"
    assert labels["report two"] == "Direct reports"
    assert comments[0].text == "my own view"


def test_unlabelled_comment_is_never_set_apart_from_named_groups() -> None:
    raters = [rater("peer", comments={"management": f"peer {n}"}) for n in range(3)]
    raters.append(rater("direct_report", comments={"management": "lonely report"}))
    comments = comments_filter(raters=raters, rules=RULES, rng=random.Random(3))
    assert {comment.label for comment in comments} == {None}


def test_comments_hidden_below_comment_minimum() -> None:
    raters = [rater("peer", comments={"management": f"peer {n}"}) for n in range(3)]
    raters.append(rater("manager", comments={"management": "from the manager"}))
    comments = comments_filter(raters=raters, rules=Rules(k=3, comment_min=4, quadrant_cut=3.5))
    assert [(c.label, c.text) for c in comments] == [("Manager", "from the manager")]


def test_anonymous_comment_order_does_not_follow_input_order() -> None:
    raters = [rater("peer", comments={"management": f"comment {n:02d}"}) for n in range(30)]
    orders = {
        tuple(c.text for c in comments_filter(raters=raters, rules=RULES, rng=random.Random(seed))) for seed in range(5)
    }
    assert len(orders) > 1
    assert tuple(f"comment {n:02d}" for n in range(30)) not in orders


def test_anonymity_filter_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        anonymity_filter(groups=["peer"], answered=[], k=3)


def test_rules_refuse_k_below_two_and_comment_minimum_below_k() -> None:
    with pytest.raises(ValueError):
        Rules(k=1, comment_min=3, quadrant_cut=3.5)
    with pytest.raises(ValueError):
        Rules(k=3, comment_min=2, quadrant_cut=3.5)


def test_trend_compares_indices_and_dimensions_with_the_previous_report() -> None:
    before = compute([rater("peer", default=2) for _ in range(3)])
    before["cycle"] = {"name": "Spring 2025"}
    now = compute([rater("peer", default=4) for _ in range(3)])
    trend = trend_compute(current=now, previous=before)
    assert trend is not None
    assert trend["cycle"] == "Spring 2025"
    assert trend["indices"]["management"] == {"before": 2.0, "now": 4.0, "change": 2.0}
    assert {"key": "plan", "name": "Plan", "before": 2.0, "now": 4.0, "change": 2.0} in trend["dimensions"]


def test_no_trend_when_nothing_is_comparable() -> None:
    before = compute([rater("peer")])
    now = compute([rater("peer") for _ in range(3)])
    assert trend_compute(current=now, previous=before) is None
