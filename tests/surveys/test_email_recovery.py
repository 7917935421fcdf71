"""Emails left ``sending`` by an interrupted worker are sent later, and only once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from surveys import services
from surveys.models import Cycle, OutboundEmail, Reminder, Team
from surveys.tasks import emails_requeue_stale, emails_send
from tests.surveys.helpers import outbox_for, person, send_queued

pytestmark = pytest.mark.django_db

STALE = services.EMAIL_CLAIM_TIMEOUT + timedelta(minutes=1)


def _claimed(email: OutboundEmail, ago: timedelta) -> None:
    """What a worker leaves behind when it dies after claiming ``email``."""
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.SENDING, claimed_at=timezone.now() - ago, attempts=1
    )


def test_a_reminder_left_sending_by_a_dead_worker_is_delivered_exactly_once(
    open_cycle: Cycle, team: Team, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    # given: a reminder round whose worker died mid-batch
    send_queued()
    mail.outbox.clear()
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    assert reminder is not None
    emails = {email.recipient: email for email in reminder.emails.all()}
    ann, ben = person(team, "Ann").email, person(team, "Ben").email
    _claimed(emails[ann], STALE)  # claimed long ago: its worker is gone
    _claimed(emails[ben], timedelta(minutes=1))  # claimed just now: a live worker may be sending it
    OutboundEmail.objects.filter(reminder=reminder).exclude(recipient__in=[ann, ben]).update(
        status=OutboundEmail.Status.SENT
    )
    # when: the scheduled job runs (its emails task runs once the job's transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.outbound_emails_requeue_stale()
    # then
    assert requeued == [emails[ann].pk]
    assert len(outbox_for(ann)) == 1 and "Reminder" in outbox_for(ann)[0].subject
    assert [message.to for message in mail.outbox] == [[ann]]
    stored = OutboundEmail.objects.get(pk=emails[ann].pk)
    assert (stored.status, stored.attempts) == (OutboundEmail.Status.SENT, 2)
    assert OutboundEmail.objects.get(pk=emails[ben].pk).status == OutboundEmail.Status.SENDING
    # and a second run finds nothing to send again
    with django_capture_on_commit_callbacks(execute=True):
        assert services.outbound_emails_requeue_stale() == []
    assert len(mail.outbox) == 1


def test_a_redelivered_task_does_not_take_over_a_recent_claim(open_cycle: Cycle) -> None:
    email = OutboundEmail.objects.filter(cycle=open_cycle).first()
    assert email is not None
    _claimed(email, timedelta(minutes=1))
    assert services.outbound_emails_send(email_ids=[email.pk]) == []
    assert services.outbound_emails_requeue_stale() == []
    assert not mail.outbox
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENDING


def test_the_requeue_job_is_scheduled_by_name(
    open_cycle: Cycle, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    from config.celery import app

    tasks = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert "surveys.emails_requeue_stale" in app.tasks
    # Run often enough that a stranded email waits little longer than the claim timeout.
    assert tasks["surveys.emails_requeue_stale"] <= 300
    email = OutboundEmail.objects.filter(cycle=open_cycle).first()
    assert email is not None
    _claimed(email, STALE)
    with django_capture_on_commit_callbacks(execute=True):
        assert emails_requeue_stale.delay().get() == [email.pk]
    assert [message.to for message in mail.outbox] == [[email.recipient]]


def test_a_live_batch_is_stopped_before_its_claim_can_be_taken_over() -> None:
    claim = services.EMAIL_CLAIM_TIMEOUT.total_seconds()
    assert emails_send.soft_time_limit < emails_send.time_limit < claim


def _interrupt_the_second_send(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The locmem backend, except that the task's soft time limit strikes during the second send."""
    attempted: list[list[str]] = []
    send = EmailBackend.send_messages

    def send_until_the_time_limit(self: EmailBackend, messages: Any) -> int:
        attempted.append(messages[0].to)
        if len(attempted) == 2:
            raise SoftTimeLimitExceeded()
        return send(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_until_the_time_limit)
    return attempted


def test_a_batch_cut_by_the_time_limit_puts_its_unsent_emails_back_in_the_queue(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempted = _interrupt_the_second_send(monkeypatch)
    ids = list(OutboundEmail.objects.filter(cycle=open_cycle).order_by("id").values_list("id", flat=True))
    with pytest.raises(SoftTimeLimitExceeded):
        services.outbound_emails_send(email_ids=ids)
    statuses = dict(OutboundEmail.objects.values_list("id", "status"))
    assert statuses[ids[0]] == OutboundEmail.Status.SENT
    # the email being handed over when the limit struck may have reached the server: it is
    # left to the claim timeout rather than sent again at once
    assert statuses[ids[1]] == OutboundEmail.Status.SENDING
    assert {statuses[pk] for pk in ids[2:]} == {OutboundEmail.Status.QUEUED}
    assert len(attempted) == 2 and len(mail.outbox) == 1


def test_the_task_retries_what_the_time_limit_left_and_never_sends_twice(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    attempted = _interrupt_the_second_send(monkeypatch)
    emails = OutboundEmail.objects.filter(cycle=open_cycle).order_by("id")
    ids = list(emails.values_list("id", flat=True))
    # when: the task is cut by the time limit, then retried (eager: at once)
    emails_send.delay(ids).get()
    # then: every email but the interrupted one went out once, in the first attempt or the retry
    interrupted = emails.get(pk=ids[1])
    assert interrupted.status == OutboundEmail.Status.SENDING
    delivered = sorted(recipient for message in mail.outbox for recipient in message.to)
    assert delivered == sorted(emails.exclude(pk=ids[1]).values_list("recipient", flat=True))
    assert len(attempted) == len(ids)
    # and once its claim has timed out, the scheduled job sends it, once
    _claimed(interrupted, STALE)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.outbound_emails_requeue_stale() == [interrupted.pk]
    assert len(outbox_for(interrupted.recipient)) == 1
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}


def test_an_email_whose_task_never_reached_the_broker_is_sent_by_the_job(
    open_cycle: Cycle, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    # given: a launch email recorded long ago whose task was lost (the broker was down at commit)
    email = OutboundEmail.objects.filter(cycle=open_cycle, status=OutboundEmail.Status.QUEUED).first()
    assert email is not None
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - STALE)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        requeued = services.outbound_emails_requeue_stale()
    # then: it is delivered, once
    assert email.pk in requeued
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENT
    assert len(outbox_for(email.recipient)) == 1


def test_a_launch_while_the_broker_is_down_still_succeeds_and_keeps_its_emails_queued(
    cycle: Cycle, api: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(emails_send, "delay", broker_down)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/cycles/{cycle.pk}/launch/")
    # then: the launch happened; its emails wait, queued, for the scheduled job
    assert response.status_code == 200
    assert response.json() == {"changed": True, "status": "open"}
    emails = OutboundEmail.objects.filter(cycle=cycle)
    assert emails.exists()
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.QUEUED}
