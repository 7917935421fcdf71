from __future__ import annotations

import re

import pytest
from django.core import mail
from django.utils import timezone

from surveys import selectors
from surveys.demo import demo_cycles_seed, demo_organization_seed, demo_survey_links
from surveys.models import Cycle, Group, Invitation, OutboundEmail
from tests.surveys.helpers import send_queued

pytestmark = pytest.mark.django_db


def test_demo_cycles_are_launched_on_the_whole_demo_team() -> None:
    organization = demo_organization_seed()
    assert organization is not None
    # when
    cycles = demo_cycles_seed(organization=organization)
    # then
    for cycle in (cycles.open_cycle, cycles.closed_cycle):
        assert cycle.status == Cycle.Status.OPEN
        assert cycle.subjects.count() == 8
        assert not cycle.invitations.exclude(status=Invitation.Status.OPEN).exists()
        # one email per rater: the eight team members and an outside rater added by hand
        assert OutboundEmail.objects.filter(cycle=cycle).count() == 9
        added = cycle.invitations.get(source=Invitation.Source.MANAGER)
        assert (added.group, added.subject.person.name) == (Group.OUTSIDE, "Jonas Berg")
    assert cycles.closed_cycle.name == "Autumn 2025 360"
    assert cycles.open_cycle.name == "Spring 2026 360"
    assert cycles.closed_cycle.deadline < cycles.open_cycle.deadline
    assert (cycles.open_cycle.deadline - timezone.now()).days == 13
    maya = cycles.open_cycle.subjects.get(person__name="Maya Lindqvist")
    groups = sorted(set(maya.invitations.values_list("group", flat=True)))
    # Maya leads the team: nobody shares her manager, so she has no peers by default.
    assert groups == sorted([Group.SELF, Group.DIRECT_REPORT])
    # the emails go through the normal path
    send_queued()
    assert len(mail.outbox) == 18


def test_demo_survey_links_work_and_cover_different_groups() -> None:
    organization = demo_organization_seed()
    assert organization is not None
    cycles = demo_cycles_seed(organization=organization)
    links = demo_survey_links(cycle=cycles.open_cycle, count=2)
    assert len(links) == 2
    groups = []
    for description, url in links:
        assert url.startswith("http://testserver/s/")
        token = re.match(r"http://testserver/s/([^/]+)/$", url)
        assert token is not None
        invitation = selectors.invitation_get_by_token(token=token.group(1))
        assert invitation is not None and invitation.cycle == cycles.open_cycle
        assert invitation.subject.person.name in description
        groups.append(invitation.group)
    assert groups == [Group.SELF, Group.PEER]
    assert len(demo_survey_links(cycle=cycles.open_cycle, count=4)) == 4
