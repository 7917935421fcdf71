"""Property: for any rater pool, the stored report JSON gives no anonymous rater away.

The checks read the JSON the report stores — what the API, the page and the PDF show —
through the attacker of ``tests/reports/adversary.py``, never the scoring code's own list
of figures: a figure added, removed or changed in the code is judged by what it shows.
"""

from __future__ import annotations

import random
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reports.scoring import RaterAnswers, Rules, report_compute, report_data
from tests.reports.adversary import (
    ANONYMOUS,
    Interpreter,
    Rater,
    Scenario,
    enumeration_attack,
    linear_attack,
)
from tests.reports.probe import CODES, DIMENSIONS, SPECS

GROUP_SIZES = {"self": 1, "manager": 1, "peer": 5, "direct_report": 5, "outside": 3}

answer = st.one_of(st.none(), st.integers(min_value=1, max_value=5))


@st.composite
def pools(draw: st.DrawFn) -> tuple[list[Rater], int]:
    k = draw(st.integers(min_value=2, max_value=4))
    # Mostly whole answers, sometimes many "can't say": both shapes the rules must hold for.
    gaps = draw(st.sampled_from([0.0, 0.0, 0.2]))
    raters = []
    for group, most in GROUP_SIZES.items():
        for _ in range(draw(st.integers(min_value=0, max_value=most))):
            level = draw(st.integers(min_value=1, max_value=5))
            ratings = {
                code: None
                if draw(st.floats(min_value=0, max_value=1)) < gaps
                else draw(st.integers(min_value=max(1, level - 1), max_value=min(5, level + 1)))
                for code in CODES
            }
            raters.append(Rater(group=group, ratings=ratings))
    return raters, k


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pool=pools())
def test_no_stored_report_isolates_fewer_than_k_anonymous_raters(pool: tuple[list[Rater], int]) -> None:
    raters, k = pool
    result = report_compute(
        raters=[RaterAnswers(group=r.group, ratings=r.ratings) for r in raters],
        dimensions=SPECS,
        rules=Rules(k=k, comment_min=k, quadrant_cut=Fraction(7, 2)),
        rng=random.Random(0),
    )
    data = report_data(result=result)
    scenario = Scenario(k=k, dimensions=DIMENSIONS, raters=tuple(raters))
    # every number is a figure the rules publish, reproduced from the answers
    figures = Interpreter(scenario).read(data)
    # no combination of them isolates fewer than k anonymous raters
    assert linear_attack(scenario, figures) == []
    # and none narrows a group's individual scores beyond its mean
    assert enumeration_attack(scenario, figures) == []
    # the figure sets behind every score hold no anonymous rater, or at least k of them
    anonymous = {index for index, rater in enumerate(raters) if rater.group in ANONYMOUS}
    for name, score in result.scores():
        behind = len(score.raters & anonymous)
        assert behind == 0 or behind >= k, name
