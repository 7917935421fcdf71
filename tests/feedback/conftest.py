"""Fixtures for the public survey: an open cycle, an invitation and its raw link token."""

from __future__ import annotations

from typing import Any

import pytest

from surveys.models import Cycle, Group, Invitation
from surveys.services import invitation_link_create
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory


@pytest.fixture
def cycle(db: None) -> Cycle:
    return CycleFactory(status=Cycle.Status.OPEN, anonymity_min=4)


@pytest.fixture
def invitation(cycle: Cycle) -> Invitation:
    subject = SubjectFactory(cycle=cycle, person__name="Jonas Berg")
    return InvitationFactory(subject=subject, status=Invitation.Status.OPEN, group=Group.PEER)


@pytest.fixture
def token(invitation: Invitation) -> str:
    return invitation_link_create(invitation=invitation)


@pytest.fixture
def make_link(cycle: Cycle) -> Any:
    """A new open invitation in ``cycle`` and its token: ``make_link(group=..., name=...)``."""

    def make(*, group: str = Group.PEER, name: str = "Priya Nair", **fields: Any) -> tuple[Invitation, str]:
        subject = SubjectFactory(cycle=cycle, person__name=name)
        invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN, group=group, **fields)
        return invitation, invitation_link_create(invitation=invitation)

    return make
