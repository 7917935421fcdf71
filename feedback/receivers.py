"""Reactions to events sent by the surveys app."""

from __future__ import annotations

from typing import Any

from feedback.services import answers_unseal
from surveys.models import Cycle


def cycle_closed_unseal_answers(*, sender: Any, cycle: Cycle, **kwargs: Any) -> None:
    """Sent inside ``cycle_close``'s transaction: open the cycle's sealed answers there.

    See ``answers_unseal``: the answers are written in the clear by the close
    transaction, in shuffled order, so no trace of a submit pairs one with its rater.
    """
    answers_unseal(cycle_id=cycle.pk)
