"""Reads for teams, cycles and invitations."""

from __future__ import annotations

from surveys import links
from surveys.models import Invitation, InvitationLink


def invitation_get_by_token(*, token: str) -> Invitation | None:
    """The invitation behind a survey link token, whatever its state; ``None`` if unknown.

    Callers decide what a closed, answered or declined invitation shows; they must show
    the same neutral page for all of those and for an unknown token.
    """
    if not token or len(token) > 200:
        return None
    link = (
        InvitationLink.objects.select_related("invitation__cycle", "invitation__subject__person")
        .filter(token_hash=links.token_hash(token))
        .first()
    )
    return link.invitation if link is not None else None
