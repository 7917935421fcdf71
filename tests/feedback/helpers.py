"""Answers in the shapes the survey takes them."""

from __future__ import annotations

from typing import Any

from feedback.models import SealedAnswer
from feedback.sealing import answer_unseal
from feedback.selectors import questionnaire_item_codes
from surveys.models import Cycle


def item_codes(cycle: Cycle) -> list[str]:
    return list(questionnaire_item_codes(questionnaire_id=cycle.questionnaire_id))


def full_answers(cycle: Cycle, *, value: int | None = 4, **comments: str) -> dict[str, Any]:
    """Every item answered with ``value`` (None = "can't say"), as the API takes them."""
    return {"ratings": dict.fromkeys(item_codes(cycle), value), "comments": comments}


def form_data(cycle: Cycle, *, value: str = "4", skip: int = 0, **comments: str) -> dict[str, str]:
    """The survey form as a browser posts it; the first ``skip`` items left unanswered."""
    data = {f"rating-{code}": value for code in item_codes(cycle)[skip:]}
    data.update({f"comment-{name}": text for name, text in comments.items()})
    return data


def sealed_payloads(cycle: Cycle) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """What the cycle's sealed answers hold, opened with the configured key (the database is not changed)."""
    return [
        answer_unseal(cycle_id=cycle.pk, blob=blob)
        for blob in SealedAnswer.objects.filter(cycle=cycle).values_list("ciphertext", flat=True)
    ]


def opened_answers(cycle: Cycle) -> list[dict[str, Any]]:
    """The cycle's sealed answers as the close will store them: subject, group, ratings, comments."""
    return [
        {"subject": payload["subject"], "group": payload["group"], "ratings": payload["ratings"], "comments": texts}
        for payload, texts in sealed_payloads(cycle)
        if payload["kind"] == "response"
    ]


def opened_declines(cycle: Cycle) -> list[dict[str, Any]]:
    """The cycle's sealed decline reasons: subject, group, reason."""
    return [
        {"subject": payload["subject"], "group": payload["group"], "reason": texts["reason"]}
        for payload, texts in sealed_payloads(cycle)
        if payload["kind"] == "decline"
    ]
