"""Reactions to events sent by the surveys app."""

from __future__ import annotations

from typing import Any

from feedback.services import responses_rewrite
from surveys.models import Cycle


def cycle_closed_rewrite_responses(*, sender: Any, cycle: Cycle, **kwargs: Any) -> None:
    """Sent inside ``cycle_close``'s transaction: rewrite the cycle's responses there too.

    See ``responses_rewrite``: the surveys app rewrites the invitations at close, this
    rewrites the responses, so no row keeps the transaction id of the submit that
    paired them.
    """
    responses_rewrite(cycle_id=cycle.pk)
