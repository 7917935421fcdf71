"""Emails are durable jobs: one interrupted, orphaned or never rung is sent later, and only once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from config.jobs import jobs_claim, jobs_sweep
from surveys import services
from surveys.models import EMAILS, Cycle, OutboundEmail, Reminder, Team
from surveys.tasks import emails_send
from tests.surveys.helpers import outbox_for, person, send_queued

pytestmark = pytest.mark.django_db


def lapsed() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)


def _claimed(email: OutboundEmail, ago: timedelta) -> None:
    """What a worker leaves behind when it dies after claiming ``email``."""
    OutboundEmail.objects.filter(pk=email.pk).update(
        status=OutboundEmail.Status.SENDING, claimed_by="gone", claimed_at=timezone.now() - ago, attempts=1
    )


def test_a_reminder_left_sending_by_a_dead_worker_is_delivered_exactly_once(
    open_cycle: Cycle, team: Team, eager_celery: None
) -> None:
    # given: a reminder round whose worker died mid-batch
    send_queued()
    mail.outbox.clear()
    reminder = services.reminder_send(cycle=open_cycle, kind=Reminder.Kind.MANUAL)
    assert reminder is not None
    emails = {email.recipient: email for email in reminder.emails.all()}
    ann, ben = person(team, "Ann").email, person(team, "Ben").email
    _claimed(emails[ann], lapsed())  # its lease ran out: its worker is gone
    _claimed(emails[ben], timedelta(seconds=5))  # renewed just now: a live worker may be sending it
    OutboundEmail.objects.filter(reminder=reminder).exclude(recipient__in=[ann, ben]).update(
        status=OutboundEmail.Status.SENT
    )
    # when: the sweep runs (eager: the doorbell it rings runs at once)
    assert jobs_sweep() == {"emails": 1}
    # then
    assert len(outbox_for(ann)) == 1 and "Reminder" in outbox_for(ann)[0].subject
    assert [message.to for message in mail.outbox] == [[ann]]
    stored = OutboundEmail.objects.get(pk=emails[ann].pk)
    assert (stored.status, stored.attempts) == (OutboundEmail.Status.SENT, 2)
    assert OutboundEmail.objects.get(pk=emails[ben].pk).status == OutboundEmail.Status.SENDING
    # and a second sweep finds nothing to send again
    assert jobs_sweep() == {}
    assert len(mail.outbox) == 1


def test_a_redelivered_message_does_not_take_over_a_live_claim(open_cycle: Cycle) -> None:
    email = OutboundEmail.objects.filter(cycle=open_cycle).first()
    assert email is not None
    _claimed(email, timedelta(seconds=5))
    assert services.outbound_emails_send(email_ids=[email.pk]) == []
    others = OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).count()
    assert emails_send.run() == others
    assert email.pk not in {message.to[0] for message in mail.outbox}
    assert OutboundEmail.objects.get(pk=email.pk).status == OutboundEmail.Status.SENDING


def _claims_side_by_side(first: Callable[[], list[int]], second: Callable[[], list[int]]) -> tuple[list, list]:
    """``first`` claims in a transaction another thread keeps open while ``second`` claims."""
    import threading

    from django.db import connection, transaction

    holding, release = threading.Event(), threading.Event()
    claimed: list[int] = []

    def first_worker() -> None:
        try:
            with transaction.atomic():
                claimed.extend(first())
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=first_worker)
    worker.start()
    try:
        assert holding.wait(10)
        with transaction.atomic():
            other = second()
    finally:
        release.set()
        worker.join(10)
    return claimed, other


def _former_claim() -> list[int]:
    # The claim before the durable jobs: a locked SELECT through the default ordering,
    # which joins the cycle and so locks (and skips) the cycle row too.
    return list(
        OutboundEmail.objects.select_for_update(skip_locked=True)
        .filter(status=OutboundEmail.Status.QUEUED)
        .values_list("id", flat=True)[:1]
    )


@pytest.mark.django_db(transaction=True)
def test_two_batches_of_one_cycle_claimed_at_the_same_moment_both_get_rows(open_cycle: Cycle) -> None:
    assert OutboundEmail.objects.filter(cycle=open_cycle, status=OutboundEmail.Status.QUEUED).count() >= 2
    # the former claim, side by side: the second batch found nothing (the lost batch)
    first, second = _claims_side_by_side(_former_claim, _former_claim)
    assert len(first) == 1 and second == [], "the comparison no longer shows the lost batch"
    # the claim of the durable jobs locks only the email rows: both batches get one
    first, second = _claims_side_by_side(
        lambda: jobs_claim(EMAILS, owner="first", limit=1), lambda: jobs_claim(EMAILS, owner="second", limit=1)
    )
    assert len(first) == len(second) == 1 and first != second


def test_the_sweep_is_scheduled_often_enough_for_a_dead_worker_to_cost_about_a_minute() -> None:
    from config.celery import app

    schedule = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert "config.jobs_sweep" in app.tasks
    assert schedule["config.jobs_sweep"] <= 60
    assert settings.JOB_SWEEP_SECONDS + settings.JOB_LEASE_SECONDS <= 120


def test_settings_that_break_the_timing_chain_are_refused_at_start_up() -> None:
    from config.timings import timing_check

    good = {
        "JOB_LEASE_SECONDS": 45,
        "JOB_SWEEP_SECONDS": 30,
        "JOB_RUN_SECONDS": 60,
        "CELERY_TASK_SOFT_TIME_LIMIT": 570,
        "CELERY_TASK_TIME_LIMIT": 600,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": 3600,
    }
    timing_check(good)
    for broken, message in [
        ({"JOB_SWEEP_SECONDS": 90}, "JOB_SWEEP_SECONDS"),
        ({"JOB_RUN_SECONDS": 400}, "JOB_RUN_SECONDS"),
        ({"CELERY_BROKER_VISIBILITY_TIMEOUT": 300}, "CELERY_VISIBILITY_TIMEOUT"),
    ]:
        with pytest.raises(ValueError, match=message):
            timing_check({**good, **broken})


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


def test_a_batch_cut_by_the_time_limit_gives_back_its_unsent_emails_at_once(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempted = _interrupt_the_second_send(monkeypatch)
    ids = list(OutboundEmail.objects.filter(cycle=open_cycle).order_by("id").values_list("id", flat=True))
    with pytest.raises(SoftTimeLimitExceeded):
        services.outbound_emails_send(email_ids=ids)
    rows = {row["id"]: row for row in OutboundEmail.objects.values("id", "status", "attempts", "not_before")}
    assert rows[ids[0]]["status"] == OutboundEmail.Status.SENT
    # the email being handed over when the limit struck may have reached the server: it is
    # left to its lease rather than sent again at once
    assert rows[ids[1]]["status"] == OutboundEmail.Status.SENDING
    # the others are due again now, their attempt refunded
    assert {rows[pk]["status"] for pk in ids[2:]} == {OutboundEmail.Status.QUEUED}
    assert {rows[pk]["attempts"] for pk in ids[2:]} == {0}
    assert all(rows[pk]["not_before"] <= timezone.now() for pk in ids[2:])
    assert len(attempted) == 2 and len(mail.outbox) == 1


def test_what_the_time_limit_left_is_sent_once_and_the_interrupted_one_is_not_sent_again(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempted = _interrupt_the_second_send(monkeypatch)
    emails = OutboundEmail.objects.filter(cycle=open_cycle).order_by("id")
    ids = list(emails.values_list("id", flat=True))
    with pytest.raises(SoftTimeLimitExceeded):
        emails_send.run()
    # the next doorbell sends the rest
    emails_send.run()
    interrupted = emails.get(pk=ids[1])
    assert interrupted.status == OutboundEmail.Status.SENDING
    delivered = sorted(recipient for message in mail.outbox for recipient in message.to)
    assert delivered == sorted(emails.exclude(pk=ids[1]).values_list("recipient", flat=True))
    assert len(attempted) == len(ids)
    # once its lease has lapsed, the sweep does not send it again (the server may have it):
    # it is failed with the reason, and the manager's "try again" sends it anew
    OutboundEmail.objects.filter(pk=interrupted.pk).update(claimed_at=timezone.now() - lapsed())
    jobs_sweep()
    emails_send.run()
    interrupted.refresh_from_db()
    assert interrupted.status == OutboundEmail.Status.FAILED
    assert outbox_for(interrupted.recipient) == []
    assert services.outbound_emails_retry(cycle=open_cycle) == [interrupted.pk]
    services.outbound_emails_send(email_ids=[interrupted.pk])
    assert len(outbox_for(interrupted.recipient)) == 1


def test_an_email_in_retry_back_off_is_sent_by_the_sweep_once_due(
    open_cycle: Cycle, eager_celery: None, settings: Any
) -> None:
    # given: an email put back for a retry whose countdown message was lost with Redis
    email = OutboundEmail.objects.filter(cycle=open_cycle, status=OutboundEmail.Status.QUEUED).first()
    assert email is not None
    OutboundEmail.objects.filter(pk=email.pk).update(attempts=2, not_before=timezone.now() + timedelta(minutes=2))
    settings.CELERY_TASK_ALWAYS_EAGER = True
    others = list(
        OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED)
        .exclude(pk=email.pk)
        .values_list("id", flat=True)
    )
    OutboundEmail.objects.filter(id__in=others).update(status=OutboundEmail.Status.SENT)
    # when: the sweep runs before it is due, then after
    assert jobs_sweep() == {}
    OutboundEmail.objects.filter(pk=email.pk).update(not_before=timezone.now())
    assert jobs_sweep() == {"emails": 1}
    # then: delivered, once
    stored = OutboundEmail.objects.get(pk=email.pk)
    assert (stored.status, stored.attempts) == (OutboundEmail.Status.SENT, 3)
    assert len(outbox_for(email.recipient)) == 1


def test_a_launch_while_the_broker_is_down_still_succeeds_and_the_sweep_sends_later(
    cycle: Cycle, api: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from kombu.exceptions import OperationalError

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(emails_send, "apply_async", broker_down)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/cycles/{cycle.pk}/launch/")
    # then: the launch happened; its emails wait, queued and due, for the sweep
    assert response.status_code == 200
    assert response.json() == {"changed": True, "status": "open"}
    emails = OutboundEmail.objects.filter(cycle=cycle)
    assert emails.exists()
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.QUEUED}
    # when: the broker is back
    monkeypatch.undo()
    from config.celery import app

    app.conf.task_always_eager = True
    try:
        assert jobs_sweep() == {"emails": 1}
    finally:
        app.conf.task_always_eager = False
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}
    assert len(mail.outbox) == emails.count()


class WorkerKilled(BaseException):
    """The worker process dying: nothing after this line of its code runs."""


def test_an_email_the_server_took_just_before_its_worker_died_is_never_sent_again(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the server accepts the first email of a batch, and the worker dies right then
    send = EmailBackend.send_messages

    def accept_then_die(self: EmailBackend, messages: Any) -> int:
        send(self, messages)
        raise WorkerKilled()

    monkeypatch.setattr(EmailBackend, "send_messages", accept_then_die)
    ids = list(OutboundEmail.objects.filter(cycle=open_cycle).order_by("id").values_list("id", flat=True))
    with pytest.raises(WorkerKilled):
        services.outbound_emails_send(email_ids=ids)
    monkeypatch.undo()
    assert len(mail.outbox) == 1
    # when: its claim lapses and the sweep comes by, more than once
    OutboundEmail.objects.filter(pk=ids[0]).update(claimed_at=timezone.now() - lapsed())
    jobs_sweep()
    jobs_sweep()
    emails_send.run()
    # then: never sent a second time; failed with the reason, for the manager to send again
    first = OutboundEmail.objects.get(pk=ids[0])
    assert first.status == OutboundEmail.Status.FAILED
    assert "may or may not have taken it" in first.last_error
    assert [message.to for message in mail.outbox].count(mail.outbox[0].to) == 1
    # the others of the batch were never handed over: sent by the next doorbell, once each
    assert set(OutboundEmail.objects.filter(pk__in=ids[1:]).values_list("status", flat=True)) == {
        OutboundEmail.Status.SENT
    }
    assert len(mail.outbox) == len(ids)


def test_a_worker_whose_clock_runs_ahead_does_not_take_a_live_claim(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    email = OutboundEmail.objects.filter(cycle=open_cycle).first()
    assert email is not None
    assert jobs_claim(EMAILS, owner="live worker", ids=[email.pk]) == [email.pk]
    # every job time is the database's: a worker an hour ahead sees the claim as fresh
    ahead = timezone.now() + timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: ahead)
    assert jobs_claim(EMAILS, owner="fast clock", ids=[email.pk]) == []
    assert OutboundEmail.objects.get(pk=email.pk).claimed_by == "live worker"


def test_a_batch_whose_emails_cannot_be_composed_ends_failed_instead_of_looping(
    open_cycle: Cycle, monkeypatch: pytest.MonkeyPatch
) -> None:
    from surveys.services import outbox

    def broken(**kwargs: Any) -> Any:
        raise ValueError("template missing")

    monkeypatch.setattr(outbox, "invitation_email_build", broken)
    queued = OutboundEmail.objects.filter(cycle=open_cycle, status=OutboundEmail.Status.QUEUED)
    ids = list(queued.values_list("id", flat=True))
    for attempt in range(1, EMAILS.max_attempts + 1):
        assert sorted(services.outbound_emails_send(email_ids=ids)) == (
            sorted(ids) if attempt < EMAILS.max_attempts else []
        )
        # each try is charged: the batch cannot come back forever
        assert set(OutboundEmail.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {attempt}
        OutboundEmail.objects.filter(pk__in=ids).update(not_before=timezone.now())
    rows = OutboundEmail.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", flat=True)) == {OutboundEmail.Status.FAILED}
    assert all("template missing" in error for error in rows.values_list("last_error", flat=True))
    assert not mail.outbox


def test_a_batch_past_its_run_budget_gives_back_what_it_has_not_handed_over(open_cycle: Cycle, settings: Any) -> None:
    # a mail server slow enough to spend the run's budget on the first email: the rest of
    # the batch is given back (due at once, attempt refunded), never cut by the time limit
    settings.JOB_RUN_SECONDS = 0
    emails = OutboundEmail.objects.filter(cycle=open_cycle).order_by("id")
    ids = list(emails.values_list("id", flat=True))
    assert len(ids) >= 3
    assert services.outbound_emails_work() == len(ids)
    rows = {row["id"]: row for row in emails.values("id", "status", "attempts", "not_before")}
    assert rows[ids[0]]["status"] == OutboundEmail.Status.SENT
    assert {rows[pk]["status"] for pk in ids[1:]} == {OutboundEmail.Status.QUEUED}
    assert {rows[pk]["attempts"] for pk in ids[1:]} == {0}
    assert all(rows[pk]["not_before"] <= timezone.now() for pk in ids[1:])
    assert [message.to for message in mail.outbox] == [[emails.get(pk=ids[0]).recipient]]
