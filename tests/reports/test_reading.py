"""The written reading of a report: each sentence checked against the figures it quotes."""

from __future__ import annotations

import json
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from reports.reading import TextBankError, report_reading, text_bank_load, text_bank_parse
from reports.scoring import DimensionSpec, ItemSpec, RaterAnswers, Rules, report_compute, report_data
from surveys.vocabulary import BUREAUCRACY_RISK, CHAOS_RISK, DEVELOPING_BOTH, QUADRANT_LABELS, STRONG_BOTH
from tests.reports.adversary import decimals, json_decimals

QUESTIONNAIRE = json.loads(
    (Path(__file__).resolve().parents[2] / "surveys" / "questionnaires" / "kotter-balance-v1.json").read_text()
)
SPECS = tuple(
    DimensionSpec(
        key=d["key"],
        name=d["name"],
        side=d["side"],
        pair=d["pair"],
        items=tuple(ItemSpec(f"{d['key']}-{n}", text) for n, text in enumerate(d["items"], start=1)),
    )
    for d in QUESTIONNAIRE["dimensions"]
)
RULES = Rules(k=3, comment_min=3, quadrant_cut=Fraction(7, 2))
BANK = text_bank_load()


def rater(group: str, management: int | None, leadership: int | None, **by_key: int | None) -> RaterAnswers:
    """Every item of a side at one level, a dimension given by key at its own."""
    ratings: dict[str, int | None] = {}
    for spec in SPECS:
        level = by_key.get(spec.key, management if spec.side == "management" else leadership)
        for item in spec.items:
            ratings[item.code] = level
    return RaterAnswers(group=group, ratings=ratings)


def read(raters: list[RaterAnswers]) -> tuple[dict[str, Any], dict[str, Any]]:
    result = report_compute(raters=raters, dimensions=SPECS, rules=RULES, rng=random.Random(1))
    data = report_data(result=result)
    data["subject"] = {"name": "Jonas Berg", "person_id": 1}
    return data, report_reading(data=data, bank=BANK)


def team(others_management: int, others_leadership: int, **self_by_key: int) -> list[RaterAnswers]:
    """Self at 4 everywhere (or as given), a manager and three peers at the given levels."""
    return [
        rater("self", 4, 4, **self_by_key),
        rater("manager", others_management, others_leadership),
        *(rater("peer", others_management, others_leadership) for _ in range(3)),
    ]


def dimension(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(d for d in data["dimensions"] if d["key"] == key)


def text_of(reading: dict[str, Any]) -> str:
    parts = [*reading["summary"], *reading["questions"]]
    for suggestion in reading["suggestions"]:
        parts += [suggestion["title"], suggestion["because"], suggestion["text"]]
    return "\n".join(parts)


def assert_quotes_only_shown_figures(data: dict[str, Any], reading: dict[str, Any]) -> None:
    # every number the reading writes is a number the report already shows
    shown = json_decimals({key: value for key, value in data.items() if key != "reading"})
    assert decimals(text_of(reading)) <= shown, decimals(text_of(reading)) - shown
    # and with exactly one decimal
    assert not re.search(r"\d\.\d\d", text_of(reading))


@pytest.mark.parametrize(
    ("management", "leadership", "quadrant"),
    [(5, 5, STRONG_BOTH), (2, 5, CHAOS_RISK), (5, 2, BUREAUCRACY_RISK), (2, 2, DEVELOPING_BOTH)],
)
def test_the_summary_names_the_quadrant_its_indices_and_what_it_tends_to_mean(
    management: int, leadership: int, quadrant: str
) -> None:
    data, reading = read(team(management, leadership))
    first = reading["summary"][0]
    assert data["quadrant"]["key"] == quadrant
    assert f"“{QUADRANT_LABELS[quadrant]}”" in first
    assert f"management index of {data['indices']['others']['management']['score']:.1f}" in first
    assert f"leadership index of {data['indices']['others']['leadership']['score']:.1f}" in first
    assert BANK.quadrants[quadrant]["meaning"] in first
    assert BANK.quadrants[quadrant]["suggestion"] in [s["text"] for s in reading["suggestions"]]
    assert BANK.quadrants[quadrant]["question"] in reading["questions"]
    assert 2 <= len(reading["suggestions"]) <= 4
    assert_quotes_only_shown_figures(data, reading)


def test_the_summary_says_who_others_are() -> None:
    _, reading = read(team(4, 4))
    assert "the manager and the anonymous raters together" in reading["summary"][0]
    without_manager = [rater("self", 4, 4), *(rater("peer", 4, 4) for _ in range(3))]
    data, reading = read(without_manager)
    assert data["quadrant"] is not None
    assert "the anonymous raters together (the manager gave no rating)" in reading["summary"][0]
    assert "the manager and" not in reading["summary"][0]


def test_chaos_risk_reads_as_drift_toward_chaos_and_bureaucracy_risk_as_a_bureaucracy() -> None:
    _, chaos = read(team(2, 5))
    _, bureaucracy = read(team(5, 2))
    assert "drift toward chaos" in chaos["summary"][0]
    assert "bureaucracy that runs well but cannot adapt" in bureaucracy["summary"][0]


def test_the_balance_sentence_repeats_the_balance_and_its_direction() -> None:
    data, reading = read(team(5, 2))
    balance = next(s for s in reading["summary"] if s.startswith("The balance"))
    assert f"is {data['balance']['value']:+.1f}" in balance
    assert "management runs ahead of leadership" in balance
    _, balanced = read(team(4, 4))
    assert "neither side runs ahead" in next(s for s in balanced["summary"] if s.startswith("The balance"))


def test_the_two_clearest_strengths_are_the_two_highest_others_dimensions() -> None:
    raters = [
        rater("self", 4, 4),
        *(
            rater(group, 3, 3, aligning_people=5, organizing_staffing=4, motivating_inspiring=2)
            for group in ("manager", "peer", "peer", "peer")
        ),
    ]
    data, reading = read(raters)
    strengths = next(s for s in reading["summary"] if s.startswith("The clearest strengths"))
    assert "Aligning people (5.0) and Organizing & staffing (4.0)" in strengths
    assert BANK.dimensions["aligning_people"]["strength"] in strengths
    # the weakest dimension gets the first suggestion, tied to its score
    assert reading["suggestions"][0]["title"] == "Motivating & inspiring"
    assert reading["suggestions"][0]["because"].endswith(
        f"{dimension(data, 'motivating_inspiring')['others']['score']:.1f}."
    )
    assert reading["suggestions"][0]["text"] == BANK.dimensions["motivating_inspiring"]["develop"]


def test_a_blind_spot_is_named_with_self_others_and_the_gap() -> None:
    data, reading = read(team(3, 3, establishing_direction=5))
    gap = dimension(data, "establishing_direction")["gap"]
    assert gap["flag"] == "blind_spot"
    sentence = next(s for s in reading["summary"] if s.startswith("Blind spots"))
    assert f"Establishing direction (self 5.0, others 3.0, gap {gap['value']:+.1f})" in sentence
    assert "Hidden strengths" not in text_of(reading)
    blind = next(s for s in reading["suggestions"] if s["source"] == "blind_spot:establishing_direction")
    assert blind["text"] == BANK.dimensions["establishing_direction"]["blind_spot"]
    assert_quotes_only_shown_figures(data, reading)


def test_a_hidden_strength_is_named_where_others_rate_higher_than_self() -> None:
    data, reading = read(team(4, 4, controlling_problem_solving=2))
    gap = dimension(data, "controlling_problem_solving")["gap"]
    assert gap["flag"] == "hidden_strength"
    sentence = next(s for s in reading["summary"] if s.startswith("Hidden strengths"))
    assert f"Controlling & problem solving (self 2.0, others 4.0, gap {gap['value']:+.1f})" in sentence
    assert "Blind spots" not in text_of(reading)
    assert_quotes_only_shown_figures(data, reading)


def test_no_gap_reads_as_agreement() -> None:
    _, reading = read(team(4, 4))
    assert "Self and others agree within half a point on every dimension that has both scores." in reading["summary"]


def test_the_widest_pair_is_named_with_both_scores_and_suggests_the_routine_for_its_direction() -> None:
    # controlling & problem solving low, motivating & inspiring high: the widest pair is the third
    raters = [
        rater("self", 4, 4),
        *(
            rater(group, 4, 4, controlling_problem_solving=2, motivating_inspiring=5)
            for group in ("manager", "peer", "peer", "peer")
        ),
    ]
    data, reading = read(raters)
    pair = next(p for p in data["pairs"] if p["pair"] == 3)
    sentence = next(s for s in reading["summary"] if s.startswith("Of Kotter's pairs"))
    assert "Controlling & problem solving (2.0)" in sentence
    assert "Motivating & inspiring (5.0)" in sentence
    assert f"is {pair['gap']:+.1f}" in sentence
    suggestion = next(s for s in reading["suggestions"] if s["source"] == "pair:3")
    assert suggestion["text"] == BANK.pairs[3]["leadership_ahead"]
    assert "review results against plan with the team" in suggestion["text"]


def test_below_k_the_reading_rests_on_self_and_manager_and_says_why() -> None:
    raters = [
        rater("self", 4, 5),
        rater("manager", 4, 3, motivating_inspiring=2),
        rater("peer", 1, 1),
        rater("peer", 1, 1),
    ]
    data, reading = read(raters)
    assert not data["anonymous_shown"]
    summary = "\n".join(reading["summary"])
    assert "each needs at least 3 of them" in summary
    assert "Jonas Berg's own rating and the manager's" in summary
    assert (
        f"“{data['self_quadrant']['label']}” (management index {data['indices']['self']['management']['score']:.1f}, "
        f"leadership index {data['indices']['self']['leadership']['score']:.1f})"
    ) in summary
    manager = {d["key"]: next(g["score"] for g in d["groups"] if g["group"] == "manager") for d in data["dimensions"]}
    assert f"and Motivating & inspiring lowest ({manager['motivating_inspiring']:.1f})" in summary
    # nothing speaks for the anonymous raters: no quadrant of Others, no strengths "as others see them"
    assert "Others —" not in summary and "as others see them" not in summary and "Blind spots" not in summary
    # the manager's lowest is not the person's: no suggestion rests on a single rater
    assert reading["suggestions"] == []
    assert "do not rate the same dimension lowest, so none is made here" in summary
    # the two peers' answers (1 everywhere) appear nowhere
    assert "1.0" not in text_of(reading)
    assert_quotes_only_shown_figures(data, reading)


def test_below_k_a_suggestion_needs_the_manager_and_the_person_to_agree() -> None:
    raters = [
        rater("self", 4, 5, motivating_inspiring=3),
        rater("manager", 4, 3, motivating_inspiring=2),
        rater("peer", 1, 1),
    ]
    data, reading = read(raters)
    assert not data["anonymous_shown"]
    (suggestion,) = reading["suggestions"]
    assert suggestion["title"] == "Motivating & inspiring"
    assert suggestion["because"] == "Both the manager (2.0) and Jonas Berg (3.0) rate it lowest."
    assert_quotes_only_shown_figures(data, reading)


def test_a_dimension_everyone_answered_cant_say_is_named_as_having_no_score() -> None:
    raters = [
        rater("self", 4, 4, aligning_people=None),
        *(rater(group, 4, 3, aligning_people=None) for group in ("manager", "peer", "peer", "peer")),
    ]
    data, reading = read(raters)
    assert dimension(data, "aligning_people")["groups"] == [] and dimension(data, "aligning_people")["others"] is None
    sentence = next(s for s in reading["summary"] if s.startswith("Aligning people has no score at all"))
    assert "“can't say”" in sentence
    # it is neither a strength nor the weakest dimension, and gets no suggestion
    assert "Aligning people" not in next(s for s in reading["summary"] if s.startswith("The clearest strengths"))
    assert all("aligning_people" not in s["source"] for s in reading["suggestions"])
    # the leadership index needs every dimension of its side: there is no Others point
    assert data["quadrant"] is None
    assert reading["summary"][0].startswith("There is no Others point on the plane")
    assert_quotes_only_shown_figures(data, reading)


def test_questions_for_the_debrief_start_general_and_follow_the_suggestions() -> None:
    _, reading = read(team(5, 2))
    assert reading["questions"][0] == BANK.debrief[0]
    assert 3 <= len(reading["questions"]) <= 5
    assert len(set(reading["questions"])) == len(reading["questions"])
    # the first general question, then those of the suggestions in their order, then the
    # other general ones while there is room
    specific = [question for question in reading["questions"][1:] if question not in BANK.debrief]
    assert specific
    general = [question for question in BANK.debrief[1:] if question not in specific]
    assert reading["questions"] == [BANK.debrief[0], *specific, *general][:5]


def test_the_reading_records_the_text_bank_it_was_written_with() -> None:
    _, reading = read(team(4, 4))
    assert reading["text_bank"] == {"name": "Kotter balance texts", "version": 1}


def test_a_text_bank_missing_a_text_is_refused() -> None:
    raw = json.loads(
        (Path(__file__).resolve().parents[2] / "reports" / "texts" / "kotter-balance-texts-v1.json").read_text()
    )
    keys = [spec.key for spec in SPECS]
    assert text_bank_parse(raw=raw, dimension_keys=keys, pairs=[1, 2, 3]).version == 1
    broken = json.loads(json.dumps(raw))
    broken["dimensions"]["aligning_people"]["develop"] = " "
    with pytest.raises(TextBankError, match=r"dimensions\.aligning_people\.develop"):
        text_bank_parse(raw=broken, dimension_keys=keys, pairs=[1, 2, 3])
    broken = json.loads(json.dumps(raw))
    del broken["quadrants"]["chaos_risk"]
    with pytest.raises(TextBankError, match=r"quadrants\.chaos_risk"):
        text_bank_parse(raw=broken, dimension_keys=keys, pairs=[1, 2, 3])
    with pytest.raises(TextBankError, match=r"pairs\.4"):
        text_bank_parse(raw=raw, dimension_keys=keys, pairs=[1, 2, 3, 4])


def test_random_pools_never_quote_a_number_the_report_does_not_show() -> None:
    generator = random.Random(12)
    for _ in range(60):
        raters = [rater("self", generator.randint(1, 5), generator.randint(1, 5))]
        for group, count in (("manager", generator.randint(0, 1)), ("peer", generator.randint(0, 5)),
                             ("direct_report", generator.randint(0, 4))):  # fmt: skip
            for _ in range(count):
                levels = {spec.key: generator.choice((None, 1, 2, 3, 4, 5)) for spec in SPECS}
                raters.append(rater(group, 3, 3, **levels))
        data, reading = read(raters)
        assert_quotes_only_shown_figures(data, reading)
        assert reading["summary"]


def test_only_dimensions_at_or_above_the_cut_are_called_strengths() -> None:
    raters = [
        rater("self", 4, 4),
        *(rater(group, 3, 3, aligning_people=4) for group in ("manager", "peer", "peer", "peer")),
    ]
    _, reading = read(raters)
    strengths = next(s for s in reading["summary"] if s.startswith("The clearest strengths"))
    assert strengths == (
        f"The clearest strengths, as others see them: Aligning people (4.0) — "
        f"{BANK.dimensions['aligning_people']['strength']}."
    )
    _, low = read(team(3, 3))
    assert not any(s.startswith("The clearest strengths") for s in low["summary"])
    assert any(s.startswith("No dimension reaches the cut of 3.5") for s in low["summary"])
