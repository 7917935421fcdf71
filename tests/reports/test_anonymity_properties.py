"""Property tests: no figure and no pair of figures can isolate fewer than k anonymous raters."""

from __future__ import annotations

import random
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.scoring import (
    ANONYMOUS_GROUPS,
    GROUP_LABELS,
    DimensionSpec,
    Figure,
    ItemSpec,
    RaterAnswers,
    ReportResult,
    Rules,
    anonymity_filter,
    report_compute,
    report_data,
)

GROUPS = ("self", "manager", "peer", "direct_report", "other")

# A small questionnaire (two items per dimension) keeps examples fast while still
# giving items and dimensions different answer patterns.
DIMENSIONS = tuple(
    DimensionSpec(
        key=key,
        name=key.title(),
        side=side,
        pair=pair,
        items=(ItemSpec(code=f"{key}-1", text=f"{key} one"), ItemSpec(code=f"{key}-2", text=f"{key} two")),
    )
    for key, side, pair in (
        ("plan", "management", 1),
        ("organize", "management", 2),
        ("control", "management", 3),
        ("direct", "leadership", 1),
        ("align", "leadership", 2),
        ("motivate", "leadership", 3),
    )
)
ITEM_CODES = [item.code for dimension in DIMENSIONS for item in dimension.items]

rating = st.one_of(st.none(), st.integers(min_value=1, max_value=5))


@st.composite
def rater_pools(draw: st.DrawFn) -> tuple[list[RaterAnswers], Rules]:
    k = draw(st.integers(min_value=2, max_value=5))
    comment_min = draw(st.integers(min_value=k, max_value=k + 3))
    raters: list[RaterAnswers] = []
    for group in GROUPS:
        size = draw(st.integers(min_value=0, max_value=1 if group == "self" else 6))
        for _ in range(size):
            ratings = {code: draw(rating) for code in ITEM_CODES}
            comments = {"management": draw(st.sampled_from(["", "plans well"]))}
            raters.append(RaterAnswers(group=group, ratings=ratings, comments=comments))
    return raters, Rules(k=k, comment_min=comment_min, quadrant_cut=3.5)


def _check(result: ReportResult, raters: list[RaterAnswers], k: int) -> None:
    _check_figures(list(result.figures()), raters, k)


def _check_figures(figures: list[Figure], raters: list[RaterAnswers], k: int) -> None:
    anonymous = {index for index, rater in enumerate(raters) if rater.group in ANONYMOUS_GROUPS}
    for figure in figures:
        assert figure.anonymous == figure.raters & anonymous
        assert len(figure.anonymous) == 0 or len(figure.anonymous) >= k, figure
        assert not any(raters[index].group == "self" for index in figure.raters) or figure.label == "self"
    by_measure: dict[str, list] = {}
    for figure in figures:
        by_measure.setdefault(figure.measure, []).append(figure)
    for measure_figures in by_measure.values():
        for first, second in combinations(measure_figures, 2):
            for difference in (first.anonymous - second.anonymous, second.anonymous - first.anonymous):
                assert len(difference) == 0 or len(difference) >= k, (first, second)


@settings(max_examples=300, deadline=None)
@given(rater_pools())
def test_no_figure_or_pair_of_figures_isolates_fewer_than_k_anonymous_raters(pool: tuple) -> None:
    raters, rules = pool
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(0))
    _check(result, raters, rules.k)


@settings(max_examples=300, deadline=None)
@given(rater_pools())
def test_item_figures_rest_on_exactly_the_raters_of_their_dimension_figure(pool: tuple) -> None:
    # The dimension figure averages each rater's own mean, an item figure averages its
    # answers: if their rater sets differed, n·dimension − Σ n·item could isolate the
    # raters in the difference. With identical sets, and every rater behind them having
    # answered the same number of the dimension's items, every combination of them weighs
    # all those raters alike.
    raters, rules = pool
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(0))
    data = report_data(result=result)
    for dimension in result.dimensions:
        items = [item for item in result.items if item.dimension.key == dimension.spec.key]
        if not items:
            continue
        assert dimension.others is not None
        for item in items:
            assert item.others.raters == dimension.others.raters, (dimension.spec.key, item.spec.code)
            assert item.others.anonymous == dimension.others.anonymous
        answered_counts = {
            sum(1 for spec in dimension.spec.items if raters[index].ratings.get(spec.code) is not None)
            for index in dimension.others.raters
        }
        assert len(answered_counts) == 1
    # the same holds for what is stored: every listed item carries its dimension's count
    others_n = {d["name"]: (d["others"] or {}).get("n") for d in data["dimensions"]}
    for listed in (*data["items"]["highest"], *data["items"]["lowest"]):
        assert listed["n"] == others_n[listed["dimension"]]


@settings(max_examples=300, deadline=None)
@given(rater_pools())
def test_stored_counts_are_zero_or_at_least_k_anonymous(pool: tuple) -> None:
    raters, rules = pool
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(0))
    data = report_data(result=result)
    identified = {"Self", "Manager"}
    for dimension in data["dimensions"]:
        for group in dimension["groups"]:
            if group["label"] not in identified:
                assert group["n"] >= rules.k
        if dimension["others"] is not None:
            assert dimension["others"]["n"] >= rules.k
    for listed in (*data["items"]["highest"], *data["items"]["lowest"]):
        assert listed["n"] >= rules.k
    anonymous_total = sum(1 for rater in raters if rater.group in ANONYMOUS_GROUPS)
    if anonymous_total < rules.k:
        assert data["notices"]
        assert data["balance"] is None
        assert data["items"]["shown"] == 0
        assert all(dimension["others"] is None for dimension in data["dimensions"])


@settings(max_examples=300, deadline=None)
@given(rater_pools())
def test_comments_need_the_comment_minimum_and_labels_need_k(pool: tuple) -> None:
    raters, rules = pool
    result = report_compute(raters=raters, dimensions=DIMENSIONS, rules=rules, rng=random.Random(0))
    counts = {group: sum(1 for rater in raters if rater.group == group) for group in ANONYMOUS_GROUPS}
    anonymous_total = sum(counts.values())
    anonymous_comments = [c for c in result.comments if raters[c.rater].group in ANONYMOUS_GROUPS]
    if anonymous_total < rules.comment_min:
        assert anonymous_comments == []
    labelled_groups = {raters[c.rater].group for c in anonymous_comments if c.label is not None}
    for group in labelled_groups:
        assert counts[group] >= rules.k
    for comment in anonymous_comments:
        if comment.label is not None:
            assert comment.label == GROUP_LABELS[raters[comment.rater].group]
    # The raters behind unlabelled comments could be any anonymous rater outside the named
    # groups: that crowd must itself reach k.
    unnamed_crowd = anonymous_total - sum(counts[group] for group in labelled_groups)
    if any(c.label is None for c in anonymous_comments) and labelled_groups:
        assert unnamed_crowd >= rules.k
    for comment in result.comments:
        if raters[comment.rater].group in ("self", "manager"):
            assert comment.label == GROUP_LABELS[raters[comment.rater].group]


@given(
    st.lists(st.sampled_from(GROUPS), max_size=20).flatmap(
        lambda groups: st.tuples(st.just(groups), st.lists(st.booleans(), min_size=len(groups), max_size=len(groups)))
    ),
    st.integers(min_value=2, max_value=5),
)
def test_anonymity_filter_shown_sets_are_disjoint_and_large_enough(case: tuple, k: int) -> None:
    groups, answered = case
    selection = anonymity_filter(groups=groups, answered=answered, k=k)
    anonymous_sets = [raters for label, raters in selection.groups.items() if label not in ("self", "manager")]
    for raters in anonymous_sets:
        assert len(raters) >= k
        assert all(answered[index] for index in raters)
    for first, second in combinations(anonymous_sets, 2):
        assert not first & second
    assert all(groups[index] != "self" for index in selection.others)
    for group in selection.dropped:
        assert group in ANONYMOUS_GROUPS
        assert not any(groups[index] == group for index in selection.others)


def test_the_check_catches_a_lone_rater_folded_into_others() -> None:
    # Three peers shown as a group and Others silently including one direct report:
    # Others minus Peers would isolate that one person. The check must refuse it.
    raters = [RaterAnswers(group="peer", ratings={}) for _ in range(3)]
    raters.append(RaterAnswers(group="direct_report", ratings={}))
    peers = frozenset({0, 1, 2})
    folded = frozenset({0, 1, 2, 3})
    figures = [
        Figure(measure="dimension:plan", label="peer", score=3.0, raters=peers, anonymous=peers),
        Figure(measure="dimension:plan", label="others", score=3.2, raters=folded, anonymous=folded),
    ]
    with pytest.raises(AssertionError):
        _check_figures(figures, raters, 3)
    _check_figures(figures[:1], raters, 3)
