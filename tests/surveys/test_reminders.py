from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from surveys import selectors, services
from surveys.models import Cycle, Invitation, OutboundEmail, Reminder, Team
from tests.surveys.helpers import outbox_for, person, send_queued

pytestmark = pytest.mark.django_db


def _launched_and_sent(cycle: Cycle) -> None:
    send_queued()
    mail.outbox.clear()


def test_reminder_goes_only_to_raters_with_open_invitations_listing_only_those(open_cycle: Cycle, team: Team) -> None:
    _launched_and_sent(open_cycle)
    mid = person(team, "Mid One")
    # Mid One has answered about himself and declined one direct report's survey; every
    # other one (his other report, his peer, his manager) is still open.
    Invitation.objects.filter(rater_email=mid.email, subject__person__name="Mid One").update(
        status=Invitation.Status.COMPLETED
    )
    Invitation.objects.filter(rater_email=mid.email, subject__person__name="Ann").update(
        status=Invitation.Status.DECLINED
    )
    dan = person(team, "Dan")
    Invitation.objects.filter(rater_email=dan.email).update(status=Invitation.Status.COMPLETED)
    # when
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL, by=team.manager)
    send_queued()
    # then
    assert reminder is not None
    assert not outbox_for(dan.email)
    (message,) = outbox_for(mid.email)
    assert message.subject.startswith("Reminder:")
    still_open = Invitation.objects.filter(rater_email=mid.email, status=Invitation.Status.OPEN)
    assert still_open.count() == 3
    assert len(re.findall(r"/s/[^/]+/", message.body)) == still_open.count()
    assert "Mid One, yourself" not in message.body and "- Ann," not in message.body
    assert "- Mid Two, as a peer" in message.body
    assert OutboundEmail.objects.filter(reminder=reminder).count() == len(mail.outbox)


def test_manual_reminder_is_refused_within_an_hour(open_cycle: Cycle, team: Team) -> None:
    services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL, by=team.manager)
    with pytest.raises(ValidationError) as error:
        services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL, by=team.manager)
    assert "less than an hour ago" in error.value.message_dict["reminder"][0]
    assert Reminder.objects.count() == 1
    Reminder.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    assert services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL, by=team.manager) is not None


def test_reminder_needs_an_open_cycle(cycle: Cycle) -> None:
    with pytest.raises(ValidationError) as error:
        services.reminder_send(cycle=cycle, kind=Reminder.Kind.MANUAL)
    assert "status" in error.value.message_dict


def test_a_round_with_nobody_left_to_remind_looks_like_any_other(open_cycle: Cycle) -> None:
    # A refusal here would tell the manager that every rater had acted.
    open_cycle.invitations.update(status=Invitation.Status.COMPLETED)
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    assert reminder is not None
    assert not reminder.emails.exists()
    assert Reminder.objects.filter(cycle=open_cycle).count() == 1


def test_a_reminder_is_never_sent_twice(open_cycle: Cycle) -> None:
    _launched_and_sent(open_cycle)
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    assert reminder is not None
    ids = list(reminder.emails.values_list("id", flat=True))
    services.outbound_emails_send(email_ids=ids)
    services.outbound_emails_send(email_ids=ids)
    assert len(mail.outbox) == len(ids)
    # and the outbox refuses a second row for the same reminder and rater
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundEmail.objects.create(
            cycle=open_cycle, recipient=reminder.emails.first().recipient, kind="reminder", reminder=reminder
        )


def test_a_reminder_brings_new_links_and_the_first_ones_keep_working(open_cycle: Cycle, team: Team) -> None:
    from surveys import selectors

    send_queued()
    ann = person(team, "Ann")
    (first,) = outbox_for(ann.email)
    mail.outbox.clear()
    services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    send_queued()
    (second,) = outbox_for(ann.email)
    old = set(re.findall(r"/s/([^/]+)/", first.body))
    new = set(re.findall(r"/s/([^/]+)/", second.body))
    assert old.isdisjoint(new)
    for token in old | new:
        invitation = selectors.invitation_get_by_token(token=token)
        assert invitation is not None and invitation.rater_email == ann.email


def test_scheduled_reminder_goes_once_per_cycle_within_the_window(
    team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    due = cycle_build(
        team, launch=True, name="Due", deadline=timezone.now() + timedelta(days=1), reminder_days_before=2
    )
    later = cycle_build(team, launch=True, name="Later", deadline=timezone.now() + timedelta(days=10))
    assert services.reminders_send_due() == [due.pk]
    assert services.reminders_send_due() == []
    assert Reminder.objects.get().cycle == due
    assert not later.reminders.exists()


def test_scheduled_reminder_and_manual_ones_coexist(team: Team, cycle_build: Callable[..., Cycle]) -> None:
    due = cycle_build(team, launch=True, deadline=timezone.now() + timedelta(days=1))
    services.reminder_send(cycle=due, kind=Reminder.Kind.MANUAL)
    Reminder.objects.update(created_at=timezone.now() - timedelta(hours=3))
    assert services.reminders_send_due() == [due.pk]
    assert sorted(due.reminders.values_list("kind", flat=True)) == ["manual", "scheduled"]


def test_reminder_task_runs_through_celery(
    open_cycle: Cycle, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    from surveys.tasks import reminders_send_due

    Cycle.objects.filter(pk=open_cycle.pk).update(deadline=timezone.now() + timedelta(hours=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send_due.delay().get() == [open_cycle.pk]
    reminders = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.REMINDER)
    assert reminders and set(reminders.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}
    assert sum(message.subject.startswith("Reminder") for message in mail.outbox) == reminders.count()


# --- What the manager learns from a reminder: that it happened, and when -------------------


def test_the_manager_never_sees_how_many_raters_a_reminder_reached(
    open_cycle: Cycle, team: Team, api: Any, client: Any
) -> None:
    # given: everyone but Ann has answered every survey, so "1 recipient" would name her
    _launched_and_sent(open_cycle)
    ann = person(team, "Ann")
    open_cycle.invitations.exclude(rater_email=ann.email).update(status=Invitation.Status.COMPLETED)
    # when: the manager asks for a reminder through the API and it goes out
    response = api.post(f"/api/cycles/{open_cycle.pk}/remind/")
    send_queued()
    # then: the answer says a round was queued and when, with no count of any kind
    assert response.status_code == 201
    assert set(response.json()) == {"id", "kind", "created_at"}
    assert response.json()["kind"] == Reminder.Kind.MANUAL
    assert len(outbox_for(ann.email)) == 1 and len(mail.outbox) == 1
    # and neither the progress API nor the cycle page counts reminder emails
    progress = api.get(f"/api/cycles/{open_cycle.pk}/progress/").json()
    assert "reminder" not in progress["emails"]
    client.force_login(team.manager)
    html = client.get(f"/cycles/{open_cycle.pk}/").content.decode()
    assert "Reminder rounds:" in html and "(requested by the manager)" in html
    invitations = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.INVITATION).count()
    assert f"{invitations} sent" in html
    assert "1 sent" not in html and "skipped" not in html


def test_the_reminder_page_message_gives_no_count(open_cycle: Cycle, team: Team, client: Any) -> None:
    ann = person(team, "Ann")
    open_cycle.invitations.exclude(rater_email=ann.email).update(status=Invitation.Status.COMPLETED)
    client.force_login(team.manager)
    html = client.post(f"/cycles/{open_cycle.pk}/remind/", follow=True).content.decode()
    assert "Reminder queued for everyone who has not answered yet." in html
    assert not re.search(r"for \d+ rater", html)


def test_failed_reminders_are_neither_counted_for_the_manager_nor_retried(
    open_cycle: Cycle, team: Team, client: Any
) -> None:
    # given: the mail server refused a whole reminder round; that count is the number of
    # raters who had not answered
    send_queued()
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    assert reminder is not None
    reminder.emails.update(status=OutboundEmail.Status.FAILED, last_error="SMTPDataError: 451")
    # when
    client.force_login(team.manager)
    html = client.get(f"/cycles/{open_cycle.pk}/").content.decode()
    retried = services.outbound_emails_retry(cycle=open_cycle)
    # then
    assert "could not be delivered" not in html
    assert retried == []
    assert set(reminder.emails.values_list("status", flat=True)) == {OutboundEmail.Status.FAILED}


def test_retry_still_requeues_a_failed_invitation(open_cycle: Cycle) -> None:
    send_queued()
    failed = OutboundEmail.objects.filter(kind=OutboundEmail.Kind.INVITATION).first()
    assert failed is not None
    OutboundEmail.objects.filter(pk=failed.pk).update(status=OutboundEmail.Status.FAILED)
    assert services.outbound_emails_retry(cycle=open_cycle) == [failed.pk]
    assert OutboundEmail.objects.get(pk=failed.pk).status == OutboundEmail.Status.QUEUED


@pytest.mark.django_db
def test_an_invitation_email_with_nothing_left_to_ask_counts_as_sent(cycle: Cycle) -> None:
    # given: one invitation email sent, one found unnecessary because its rater had answered
    OutboundEmail.objects.create(
        cycle=cycle, recipient="a@example.test", kind=OutboundEmail.Kind.INVITATION, status=OutboundEmail.Status.SENT
    )
    OutboundEmail.objects.create(
        cycle=cycle, recipient="b@example.test", kind=OutboundEmail.Kind.INVITATION, status=OutboundEmail.Status.SKIPPED
    )
    # when
    summary = selectors.cycle_email_summary(cycle=cycle)
    # then: the manager cannot tell the two apart, so cannot learn that b answered early
    assert summary.counts[OutboundEmail.Kind.INVITATION] == {selectors.DELIVERED: 2}
