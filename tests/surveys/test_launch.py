from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from config import links
from surveys import services
from surveys.models import Cycle, Group, Invitation, InvitationLink, OutboundEmail, Team
from tests.surveys.helpers import person, send_queued

pytestmark = pytest.mark.django_db

URL = re.compile(r"http://testserver/s/([A-Za-z0-9_\-]+)/")


def test_default_raters_follow_the_reporting_lines(cycle: Cycle, team: Team) -> None:
    mid = cycle.subjects.get(person__name="Mid One")
    raters = {(invitation.group, invitation.rater_person.name) for invitation in mid.invitations.all()}
    assert raters == {
        (Group.SELF, "Mid One"),
        (Group.MANAGER, "Lead"),
        (Group.DIRECT_REPORT, "Ann"),
        (Group.DIRECT_REPORT, "Ben"),
        # peers share Mid One's manager: Mid Two, not Mid Two's reports
        (Group.PEER, "Mid Two"),
    }
    lead = cycle.subjects.get(person__name="Lead")
    assert not lead.invitations.filter(group=Group.MANAGER).exists()
    assert all(invitation.status == Invitation.Status.DRAFT for invitation in cycle.invitations.all())
    assert all(email == email.lower() for email in cycle.invitations.values_list("rater_email", flat=True))


def test_launch_opens_every_invitation_and_queues_one_email_per_rater(cycle: Cycle) -> None:
    # when
    assert services.cycle_launch(cycle=cycle, by=cycle.team.manager) is True
    # then
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN and cycle.launched_at is not None
    assert not cycle.invitations.exclude(status=Invitation.Status.OPEN).exists()
    raters = set(cycle.invitations.values_list("rater_email", flat=True))
    emails = OutboundEmail.objects.filter(cycle=cycle)
    assert sorted(emails.values_list("recipient", flat=True)) == sorted(raters)
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.QUEUED}


def test_launch_rings_for_the_emails_only_on_commit(
    cycle: Cycle, django_capture_on_commit_callbacks: Any, doorbells: list[tuple[str, float | None]]
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.cycle_launch(cycle=cycle, by=cycle.team.manager)
        assert doorbells == []
    for callback in callbacks:
        callback()
    # the emails are rows, queued and due; the broker only hears that there is work
    emails = OutboundEmail.objects.filter(cycle=cycle)
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.QUEUED}
    assert doorbells == [("surveys.emails_send", None)] * -(-emails.count() // services.EMAIL_BATCH_SIZE)


def test_second_launch_changes_nothing_and_sends_nothing(cycle: Cycle) -> None:
    services.cycle_launch(cycle=cycle, by=cycle.team.manager)
    launched_at = Cycle.objects.get(pk=cycle.pk).launched_at
    emails_before = OutboundEmail.objects.count()
    # when: a double click or a second tab still holding the draft
    stale = Cycle.objects.get(pk=cycle.pk)
    stale.status = Cycle.Status.DRAFT
    assert services.cycle_launch(cycle=stale, by=cycle.team.manager) is False
    # then
    assert OutboundEmail.objects.count() == emails_before
    assert Cycle.objects.get(pk=cycle.pk).launched_at == launched_at


def test_each_rater_gets_one_email_listing_everyone_they_rate(open_cycle: Cycle, team: Team) -> None:
    send_queued()
    ann = person(team, "Ann")
    messages = [message for message in mail.outbox if message.to == [ann.email]]
    assert len(messages) == 1
    message = messages[0]
    asked = Invitation.objects.filter(cycle=open_cycle, rater_email=ann.email)
    html = message.alternatives[0][0]
    for invitation in asked:
        assert invitation.subject.person.name in message.body
        assert invitation.subject.person.name in html
    assert "yourself (self-assessment)" in message.body
    assert "as a peer" in message.body
    assert "at least 3 people" in message.body and "at least 3 people" in html
    assert "Your self-assessment is shown as yours" in message.body
    # Ann manages nobody: no promise about identified manager answers in her email
    assert "the person will know they came from you" not in message.body
    assert open_cycle.deadline.strftime("%Y") in message.body
    tokens = URL.findall(message.body)
    assert len(tokens) == asked.count() == len(set(tokens))
    # the links work, and only their hashes are stored
    for token in tokens:
        link = InvitationLink.objects.get(token_hash=links.token_hash(token))
        assert link.invitation.rater_email == ann.email
    assert not InvitationLink.objects.filter(token_hash__in=tokens).exists()
    assert set(URL.findall(html)) == set(tokens)
    assert OutboundEmail.objects.get(recipient=ann.email).status == OutboundEmail.Status.SENT


def test_manager_email_states_that_manager_answers_are_identified(open_cycle: Cycle, team: Team) -> None:
    send_queued()
    lead = person(team, "Lead")
    (message,) = [message for message in mail.outbox if message.to == [lead.email]]
    assert "as their manager" in message.body
    assert "the person will know they came from you" in message.body
    # and that they also count in the combined Others figures, in both bodies
    html = str(message.alternatives[0][0])
    for body in (message.body, html):
        assert "also count in the combined “Others” figures" in body


def test_sending_again_never_sends_twice(open_cycle: Cycle) -> None:
    ids = list(OutboundEmail.objects.values_list("id", flat=True))
    services.outbound_emails_send(email_ids=ids)
    sent = len(mail.outbox)
    # when: the task is delivered a second time (worker restart, acks_late)
    services.outbound_emails_send(email_ids=ids)
    assert len(mail.outbox) == sent == len(ids)


def test_an_email_with_nothing_left_to_ask_is_skipped(open_cycle: Cycle, team: Team) -> None:
    ann = person(team, "Ann")
    Invitation.objects.filter(rater_email=ann.email).update(status=Invitation.Status.COMPLETED)
    send_queued()
    assert not [message for message in mail.outbox if message.to == [ann.email]]
    assert OutboundEmail.objects.get(recipient=ann.email).status == OutboundEmail.Status.SKIPPED


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"subjects_empty": True}, "subjects"),
        ({"no_raters": True}, "raters"),
        ({"past_deadline": True}, "deadline"),
    ],
)
def test_launch_refuses_an_incomplete_cycle(
    change: dict[str, bool], field: str, cycle: Cycle, team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    from datetime import timedelta

    from django.core.exceptions import ValidationError
    from django.utils import timezone

    if change.get("subjects_empty"):
        cycle.subjects.all().delete()
    if change.get("no_raters"):
        cycle.invitations.filter(subject__person__name="Ann").delete()
    if change.get("past_deadline"):
        Cycle.objects.filter(pk=cycle.pk).update(deadline=timezone.now() - timedelta(minutes=1))
        cycle.refresh_from_db()
    with pytest.raises(ValidationError) as error:
        services.cycle_launch(cycle=cycle, by=team.manager)
    assert field in error.value.message_dict
    assert Cycle.objects.get(pk=cycle.pk).status == Cycle.Status.DRAFT
    assert not OutboundEmail.objects.exists()


def test_launch_runs_a_constant_number_of_queries(
    manager: Any, cycle_build: Callable[..., Cycle], django_assert_max_num_queries: Any
) -> None:
    from tests.surveys.helpers import team_build

    for size in (3, 30):
        cycle = cycle_build(team_build(manager, size=size, name=f"Team {size}"))
        with django_assert_max_num_queries(12):
            services.cycle_launch(cycle=cycle, by=manager)
        assert cycle.invitations.filter(status=Invitation.Status.OPEN).count() == size * size


def test_the_invitation_estimates_the_time_from_the_number_of_surveys_and_has_a_button(
    cycle: Cycle, team: Team
) -> None:
    services.cycle_launch(cycle=cycle, by=team.manager)
    send_queued()
    for name in ("Mid One", "Ann"):
        address = person(team, name).email
        (message,) = [m for m in mail.outbox if m.to == [address]]
        count = cycle.invitations.filter(rater_email=address).count()
        html = message.alternatives[0][0]
        if count == 1:
            assert "The survey takes about 10 minutes." in message.body
        else:
            assert f"set aside about {count * 10} minutes in all" in message.body
            assert f"set aside about {count * 10} minutes in all" in html
        # one button per survey in the HTML twin, the same links in the text
        links_in_text = URL.findall(message.body)
        assert len(links_in_text) == count
        for token in links_in_text:
            assert f'<a href="http://testserver/s/{token}/" style="display: inline-block;' in html
        assert "Answer the survey about" in html
    mid_count = cycle.invitations.filter(rater_email=person(team, "Mid One").email).count()
    assert mid_count == 5  # himself, Mid Two as a peer, Ann and Ben as their manager, Lead as a report
