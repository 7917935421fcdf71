"""Survey links: a new secret token per invitation, stored only as its hash."""

from __future__ import annotations

import logging

from config import links
from surveys.models import (
    Invitation,
    InvitationLink,
)

logger = logging.getLogger(__name__)


def invitation_link_create(*, invitation: Invitation) -> str:
    """A new secret survey link for ``invitation``; returns the raw token, which is never stored.

    Call it while composing the email that carries the link: only the SHA-256 of the
    token is kept, so the email is the one place the working link exists.
    """
    token = links.token_new()
    InvitationLink.objects.create(invitation=invitation, token_hash=links.token_hash(token))
    return token


def invitation_links_create(*, invitations: list[Invitation]) -> dict[int, str]:
    """Bulk version of ``invitation_link_create``: {invitation id: raw token}, one insert."""
    tokens = {invitation.pk: links.token_new() for invitation in invitations}
    InvitationLink.objects.bulk_create(
        [InvitationLink(invitation_id=pk, token_hash=links.token_hash(token)) for pk, token in tokens.items()]
    )
    return tokens
