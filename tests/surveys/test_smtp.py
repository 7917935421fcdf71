"""The real email path: Django's SMTP backend talking to an SMTP server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client

from config import links
from config.embedded import free_port
from surveys import services
from surveys.models import Cycle, InvitationLink, OutboundEmail, Team
from tests.smtp_sink import Inbox
from tests.surveys.helpers import person, team_build


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.django_db
def test_launch_emails_reach_a_real_smtp_server_over_one_connection(
    smtp_server: Callable[..., Inbox], open_cycle: Cycle, team: Team
) -> None:
    inbox = smtp_server()
    ids = list(OutboundEmail.objects.values_list("id", flat=True))
    # when
    assert services.outbound_emails_send(email_ids=ids) == []
    # then
    raters = set(open_cycle.invitations.values_list("rater_email", flat=True))
    assert sorted(recipient for recipients, _ in inbox.messages for recipient in recipients) == sorted(raters)
    assert inbox.sessions == 1
    (message,) = inbox.to(person(team, "Cat").email)
    assert "Spring review" in message["Subject"]
    assert message["From"] == "Balance 360 <no-reply@balance360.local>"
    text, html = _text(message), _html(message)
    assert "Cat, yourself (self-assessment)" in text
    assert "at least 3 people in a group" in text and "at least 3 people in a group" in html
    token = text.split("http://testserver/s/")[1].split("/")[0]
    assert InvitationLink.objects.filter(token_hash=links.token_hash(token)).exists()
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}


@pytest.mark.django_db
def test_a_refused_first_attempt_is_retried_and_delivered_once(
    smtp_server: Callable[..., Inbox], open_cycle: Cycle, team: Team, eager_celery: None, caplog: Any
) -> None:
    from surveys.tasks import emails_send

    ann = person(team, "Ann").email
    inbox = smtp_server(refuse_first={ann})
    ids = list(OutboundEmail.objects.values_list("id", flat=True))
    # when: the task (eager: its retry runs at once instead of after the backoff)
    emails_send.delay(ids).get()
    # then
    assert inbox.refused[ann] == 1
    assert len(inbox.to(ann)) == 1
    row = OutboundEmail.objects.get(recipient=ann)
    assert (row.status, row.attempts) == (OutboundEmail.Status.SENT, 2)
    assert len(inbox.messages) == len(ids)
    others = OutboundEmail.objects.exclude(recipient=ann)
    assert set(others.values_list("attempts", flat=True)) == {1}
    # the failure was logged, without any link token
    assert "not sent, will retry: SMTPDataError" in caplog.text
    token = _text(inbox.to(ann)[0]).split("/s/")[1].split("/")[0]
    assert token not in caplog.text and "/s/" not in caplog.text


@pytest.mark.django_db
def test_an_email_that_keeps_failing_ends_failed_and_visible_to_the_manager(
    smtp_server: Callable[..., Inbox], open_cycle: Cycle, team: Team, eager_celery: None, client: Client
) -> None:
    from surveys.models import EMAILS
    from surveys.tasks import emails_send

    ben = person(team, "Ben").email
    inbox = smtp_server(refuse_always={ben})
    emails_send.delay(list(OutboundEmail.objects.values_list("id", flat=True))).get()
    row = OutboundEmail.objects.get(recipient=ben)
    assert row.status == OutboundEmail.Status.FAILED
    assert row.attempts == EMAILS.max_attempts
    assert "451" in row.last_error
    assert inbox.refused[ben] == EMAILS.max_attempts
    client.force_login(team.manager)
    page = client.get(f"/cycles/{open_cycle.pk}/").content.decode()
    assert "1 email(s) could not be delivered" in page
    assert f"Invitation to {ben}" in page
    # the manager can try again once the problem is fixed
    inbox.refuse_always.clear()
    client.post(f"/cycles/{open_cycle.pk}/emails/retry/")
    services.outbound_emails_send(email_ids=[row.pk])
    assert OutboundEmail.objects.get(pk=row.pk).status == OutboundEmail.Status.SENT
    assert len(inbox.to(ben)) == 1


@pytest.mark.django_db
def test_a_permanent_refusal_is_not_retried(smtp_server: Callable[..., Inbox], open_cycle: Cycle, team: Team) -> None:
    ben = person(team, "Ben").email
    inbox = smtp_server(refuse_mailbox={ben})
    retry = services.outbound_emails_send(email_ids=list(OutboundEmail.objects.values_list("id", flat=True)))
    assert retry == []
    row = OutboundEmail.objects.get(recipient=ben)
    assert (row.status, row.attempts) == (OutboundEmail.Status.FAILED, 1)
    assert "550" in row.last_error
    assert not inbox.to(ben)
    assert OutboundEmail.objects.filter(status=OutboundEmail.Status.SENT).count() == len(inbox.messages)


@pytest.mark.django_db
def test_server_down_keeps_emails_queued_for_retry(settings: Any, open_cycle: Cycle) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    ids = list(OutboundEmail.objects.values_list("id", flat=True))
    assert sorted(services.outbound_emails_send(email_ids=ids)) == sorted(ids)
    assert set(OutboundEmail.objects.values_list("status", flat=True)) == {OutboundEmail.Status.QUEUED}
    assert all(
        "ConnectionRefusedError" in error for error in OutboundEmail.objects.values_list("last_error", flat=True)
    )


@pytest.mark.slow
def test_celery_worker_sends_the_launch_emails_and_retries_a_refusal(
    smtp_server: Callable[..., Inbox], celery_worker: Any, manager: Any, settings: Any
) -> None:
    settings.JOB_RETRY_BACKOFF_SECONDS = 0.2
    team = team_build(manager)
    dan = person(team, "Dan").email
    inbox = smtp_server(refuse_first={dan})
    from datetime import timedelta

    from django.utils import timezone

    cycle = services.cycle_create(
        team=team,
        by=manager,
        name="Worker cycle",
        deadline=timezone.now() + timedelta(days=3),
        people=list(team.people.all()),
    )
    # when: launch commits, and the email task is enqueued on commit for the worker
    services.cycle_launch(cycle=cycle, by=manager)
    deadline = time.monotonic() + 30
    emails = OutboundEmail.objects.filter(cycle=cycle)
    while time.monotonic() < deadline and emails.exclude(status=OutboundEmail.Status.SENT).exists():
        time.sleep(0.2)
    # then
    assert set(emails.values_list("status", flat=True)) == {OutboundEmail.Status.SENT}
    assert len(inbox.to(dan)) == 1 and inbox.refused[dan] == 1
    assert emails.get(recipient=dan).attempts == 2
    assert len(inbox.messages) == emails.count() == 7
