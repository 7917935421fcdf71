"""Answers in the shapes the survey takes them."""

from __future__ import annotations

from typing import Any

from feedback.selectors import questionnaire_item_codes
from surveys.models import Cycle


def item_codes(cycle: Cycle) -> list[str]:
    return questionnaire_item_codes(questionnaire_id=cycle.questionnaire_id)


def full_answers(cycle: Cycle, *, value: int | None = 4, **comments: str) -> dict[str, Any]:
    """Every item answered with ``value`` (None = "can't say"), as the API takes them."""
    return {"ratings": dict.fromkeys(item_codes(cycle), value), "comments": comments}


def form_data(cycle: Cycle, *, value: str = "4", skip: int = 0, **comments: str) -> dict[str, str]:
    """The survey form as a browser posts it; the first ``skip`` items left unanswered."""
    data = {f"rating-{code}": value for code in item_codes(cycle)[skip:]}
    data.update({f"comment-{name}": text for name, text in comments.items()})
    return data
