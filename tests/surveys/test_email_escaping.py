"""Plain-text emails show names and comments as typed; HTML emails escape them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from reports.emails import report_release_email_send
from reports.models import Release, Report
from surveys import services
from surveys.emails import invitation_email_build, nomination_email_build
from surveys.models import Cycle, Group, Invitation, Nomination, Team
from tests.factories import InvitationFactory, PersonFactory, SubjectFactory

pytestmark = pytest.mark.django_db

NAME = "<b>x</b> O'Brien"
CYCLE = "R&D <i>spring</i> review"
ESCAPED_NAME = "&lt;b&gt;x&lt;/b&gt; O&#x27;Brien"
ESCAPED_CYCLE = "R&amp;D &lt;i&gt;spring&lt;/i&gt; review"


def assert_plain_and_escaped(message: Any) -> None:
    html = message.alternatives[0][0]
    for plain in (message.subject, message.body):
        assert "&amp;" not in plain and "&lt;" not in plain and "&#x27;" not in plain
    assert CYCLE in message.subject or CYCLE in message.body
    assert CYCLE in message.body
    assert ESCAPED_CYCLE in html
    assert CYCLE not in html


@pytest.fixture
def tricky_cycle(team: Team, cycle_build: Callable[..., Cycle]) -> Cycle:
    return cycle_build(team, name=CYCLE)


@pytest.mark.parametrize("kind", ["invitation", "reminder"])
def test_invitation_and_reminder_text_is_plain_and_html_is_escaped(tricky_cycle: Cycle, kind: str) -> None:
    subject = SubjectFactory(cycle=tricky_cycle, person=PersonFactory(team=tricky_cycle.team, name=NAME))
    invitation = InvitationFactory(subject=subject, group=Group.PEER, rater_name=NAME, status=Invitation.Status.OPEN)
    message = invitation_email_build(
        kind=kind,
        cycle=tricky_cycle,
        recipient=invitation.rater_email,
        invitations=[invitation],
        tokens={invitation.pk: "t" * 43},
    )
    assert_plain_and_escaped(message)
    assert f"Hello {NAME}," in message.body
    assert NAME in message.subject or kind == "reminder"
    assert ESCAPED_NAME in message.alternatives[0][0]


def test_nomination_text_is_plain_and_html_is_escaped(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    cycle = cycle_build(team, name=CYCLE, nomination_mode=Cycle.NominationMode.SUBJECTS)
    subject = cycle.subjects.select_related("person").first()
    assert subject is not None
    subject.person.name = NAME
    nomination = Nomination.objects.create(subject=subject)
    message = nomination_email_build(nomination=nomination, url="http://testserver/n/x/")
    assert_plain_and_escaped(message)
    assert f"Hello {NAME}," in message.body


def test_report_release_subject_and_text_are_plain_and_html_is_escaped(tricky_cycle: Cycle) -> None:
    subject = SubjectFactory(cycle=tricky_cycle, person=PersonFactory(team=tricky_cycle.team, name=NAME))
    report = Report.objects.create(cycle=tricky_cycle, subject=subject, status=Report.Status.READY)
    release = Release.objects.create(report=report, email="p@example.test", expires_at=timezone.now())
    assert report_release_email_send(release=release, link="http://testserver/r/x/") == 1
    [message] = mail.outbox
    assert message.subject == f"Your balance report from {CYCLE}"
    assert f"Hello {NAME}," in message.body
    assert_plain_and_escaped(message)
    assert ESCAPED_NAME in message.alternatives[0][0]


def test_an_email_built_from_a_queued_outbox_row_keeps_the_name_plain(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team, name=CYCLE, launch=True)
    services.outbound_emails_send(email_ids=list(cycle.emails.values_list("id", flat=True)))
    assert mail.outbox
    for message in mail.outbox:
        assert CYCLE in message.subject
        assert ESCAPED_CYCLE in message.alternatives[0][0]


def test_nomination_approved_text_is_plain_and_html_is_escaped(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    from django.utils import timezone

    from surveys.emails import nomination_approved_email_build

    cycle = cycle_build(team, name=CYCLE, nomination_mode=Cycle.NominationMode.SUBJECTS)
    subject = cycle.subjects.select_related("person").first()
    assert subject is not None
    subject.person.name = NAME
    nomination = Nomination.objects.create(subject=subject, approved_at=timezone.now())
    message = nomination_approved_email_build(nomination=nomination)
    assert_plain_and_escaped(message)
    assert f"Hello {NAME}," in message.body
    assert "You did not send a list" in message.body
