"""Releasing a report: the email goes out from a Celery task, is retried, and ends visible.

The release row is written in the coach's request; the email (and its link token) is made
by the task after commit. A failing mail server never turns the coach's request into an
error: the row shows queued, then sent or failed (with the reason and a way to try again).
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.test import Client
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from config.celery import app as celery_app
from config.embedded import free_port
from config.jobs import jobs_sweep
from config.links import token_hash
from reports import services
from reports.models import RELEASES, CoachAssignment, Release, Report
from reports.tasks import release_send_task
from tests.reports.helpers import SMALL_PDF, stored_report_create

RELEASE_EMAIL_MAX_RETRIES = RELEASES.max_attempts - 1

LINK = re.compile(r"http://testserver/r/([A-Za-z0-9_\-]+)/")


@dataclass
class MailServer:
    """An aiosmtpd handler: refuses the first ``refuse_first`` messages with 451, then accepts.

    It keeps the refused messages too, so a test can try the link of an attempt that the
    server never delivered.
    """

    refuse_first: int = 0
    refuse_code: str = "451 4.3.0 Mailbox busy, try again later"
    delivered: list[EmailMessage] = field(default_factory=list)
    refused: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = cast(EmailMessage, email.message_from_bytes(envelope.content, policy=email.policy.default))
        with self.lock:
            if len(self.refused) < self.refuse_first:
                self.refused.append(message)
                return self.refuse_code
            self.delivered.append(message)
        return "250 OK"


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def token_in(body: str) -> str:
    match = LINK.search(body)
    assert match is not None, body
    return match.group(1)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Callable[..., MailServer]]:
    controllers: list[Controller] = []

    def start(**options: Any) -> MailServer:
        handler = MailServer(**options)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = (
            "127.0.0.1",
            port,
            False,
            5,
        )
        return handler

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_down(settings: Any) -> None:
    """The SMTP backend pointed at a port where nothing listens: every connection is refused."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2


@pytest.mark.django_db
def test_release_while_smtp_is_down_answers_normally_and_ends_failed_on_the_page(
    client: Client,
    coached: Report,
    coach: Any,
    smtp_down: None,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(coach)
    # when: the coach releases; the email job waits for the commit
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/reports/{coached.id}/release/", follow=True)
    # then: a normal page, and a queued row without any link yet
    assert response.status_code == 200
    assert "will be emailed to jonas@example.test" in response.content.decode()
    release = Release.objects.get(report=coached)
    assert (release.status, release.attempts, release.token_hash) == (Release.Status.QUEUED, 0, None)
    assert "being emailed" in client.get(f"/reports/{coached.id}/").content.decode()
    assert len(callbacks) == 1

    # when: the commit hands the job to Celery (eager: each retry runs at once)
    callbacks[0]()
    # then: retried, given up, and recorded
    release.refresh_from_db()
    assert release.status == Release.Status.FAILED
    assert release.attempts == RELEASE_EMAIL_MAX_RETRIES + 1
    assert "ConnectionRefusedError" in release.last_error
    page = client.get(f"/reports/{coached.id}/").content.decode()
    assert "could not be emailed" in page
    assert f"after {RELEASE_EMAIL_MAX_RETRIES + 1} attempts" in page
    assert "ConnectionRefusedError" in page
    assert f'action="/reports/{coached.id}/releases/{release.id}/retry/"' in page


@pytest.mark.django_db
def test_api_release_while_smtp_is_down_answers_queued_then_shows_failed_and_retries(
    client: Client,
    coached: Report,
    coach: Any,
    smtp_down: None,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
    smtp_server: Callable[..., MailServer],
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/reports/{coached.id}/release/")
    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["status"], body["attempts"]) == ("jonas@example.test", "queued", 0)
    listed = client.get(f"/api/reports/{coached.id}/releases/").json()
    assert [(row["id"], row["status"]) for row in listed] == [(body["id"], "failed")]
    assert listed[0]["attempts"] == RELEASE_EMAIL_MAX_RETRIES + 1
    assert "ConnectionRefusedError" in listed[0]["last_error"]
    assert listed[0]["sent_at"] is None

    # when: the server is back and the coach tries again
    server = smtp_server()
    with django_capture_on_commit_callbacks(execute=True):
        again = client.post(f"/api/reports/{coached.id}/releases/{body['id']}/retry/")
    # then
    assert again.status_code == 202
    assert again.json()["status"] == "queued"
    (message,) = server.delivered
    token = token_in(text_of(message))
    assert Client().get(f"/r/{token}/").content == SMALL_PDF
    row = client.get(f"/api/reports/{coached.id}/releases/").json()[0]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, "")
    assert row["sent_at"] is not None


@pytest.mark.django_db
def test_a_refused_attempt_is_retried_and_only_the_delivered_link_works(
    client: Client,
    coached: Report,
    coach: Any,
    smtp_server: Callable[..., MailServer],
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
    caplog: Any,
) -> None:
    server = smtp_server(refuse_first=1)
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/reports/{coached.id}/release/")
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith(("reports", "celery"))
    )
    # exactly one email reached the person, after one refusal
    assert len(server.refused) == 1
    (message,) = server.delivered
    assert message["To"] == "jonas@example.test"
    assert "Spring 2026" in message["Subject"]
    token = token_in(text_of(message))
    assert f"http://testserver/r/{token}/" in html_of(message)
    release = Release.objects.get(report=coached)
    assert (release.status, release.attempts, release.last_error) == (Release.Status.SENT, 2, "")
    # only the hash of the delivered link is kept
    assert release.token_hash == token_hash(token)
    assert token not in str(Release.objects.values_list().get(id=release.id))
    # the link of the refused attempt was replaced: it leads nowhere
    superseded = token_in(text_of(server.refused[0]))
    assert superseded != token
    assert Client().get(f"/r/{superseded}/").status_code == 404
    download = Client().get(f"/r/{token}/")
    assert download.status_code == 200 and download.content == SMALL_PDF
    # the refusal was logged, without the link
    assert "email not sent: SMTPDataError" in logged
    assert token not in logged and superseded not in logged and "/r/" not in logged
    page = client.get(f"/reports/{coached.id}/").content.decode()
    assert "could not be emailed" not in page
    assert "works until" in page


@pytest.mark.django_db
def test_a_permanent_refusal_fails_at_once_without_retrying(
    client: Client,
    coached: Report,
    coach: Any,
    smtp_server: Callable[..., MailServer],
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    server = smtp_server(refuse_first=10, refuse_code="554 5.7.1 Message rejected")
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/reports/{coached.id}/release/")
    release = Release.objects.get(report=coached)
    assert (release.status, release.attempts) == (Release.Status.FAILED, 1)
    assert "554" in release.last_error
    assert len(server.refused) == 1 and not server.delivered


@pytest.mark.django_db
def test_the_row_waits_in_the_database_between_retries_backs_off_and_fails_at_the_last(
    coached: Report, coach: Any, smtp_down: None, doorbells: list[tuple[str, float | None]]
) -> None:
    # The doorbell task run directly, one delivery at a time, as a worker would run them.
    release, _ = services.report_release(report=coached, by=coach)
    waits: list[float] = []
    for attempt in range(RELEASE_EMAIL_MAX_RETRIES):
        assert release_send_task.run(release.id) == 1
        release.refresh_from_db()
        assert (release.status, release.attempts) == (Release.Status.QUEUED, attempt + 1)
        assert "ConnectionRefusedError" in release.last_error
        waits.append(round((release.not_before - timezone.now()).total_seconds()))
        # not due yet: a doorbell rung early (or twice) claims nothing
        assert release_send_task.run(release.id) == 0
        Release.objects.filter(id=release.id).update(not_before=timezone.now())
    assert release_send_task.run(release.id) == 1
    release.refresh_from_db()
    assert (release.status, release.attempts) == (Release.Status.FAILED, RELEASE_EMAIL_MAX_RETRIES + 1)
    assert f"after {RELEASE_EMAIL_MAX_RETRIES + 1} attempts" in release.last_error
    # exponential backoff kept in the row: 30 s, 1 min, 2 min, 4 min, 8 min, each also rung
    # with a countdown (lost with Redis, the sweep rings when the row is due)
    assert waits == [30 * 2**attempt for attempt in range(RELEASE_EMAIL_MAX_RETRIES)]
    assert [countdown for _, countdown in doorbells][-RELEASE_EMAIL_MAX_RETRIES:] == [float(w) for w in waits]


@pytest.mark.django_db
def test_a_second_delivery_of_the_job_sends_nothing(
    coached: Report, coach: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        release, _ = services.report_release(report=coached, by=coach)
    assert services.release_send(release_id=release.id) == Release.Status.SENT
    assert services.release_send(release_id=release.id) == ""
    assert len(mail.outbox) == 1
    release.refresh_from_db()
    assert release.attempts == 1


@pytest.mark.django_db
def test_a_release_revoked_before_its_email_went_out_is_never_sent(
    client: Client, coached: Report, coach: Any, eager_celery: None, django_capture_on_commit_callbacks: Any
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(f"/reports/{coached.id}/release/")
    release = Release.objects.get(report=coached)
    page = client.get(f"/reports/{coached.id}/").content.decode()
    assert f'action="/reports/{coached.id}/releases/{release.id}/revoke/"' in page
    client.post(f"/reports/{coached.id}/releases/{release.id}/revoke/")
    for callback in callbacks:
        callback()
    release.refresh_from_db()
    assert release.revoked_at is not None and release.token_hash is None
    assert release.status == Release.Status.QUEUED
    assert mail.outbox == []
    assert "revoked" in client.get(f"/reports/{coached.id}/").content.decode()


@pytest.mark.django_db
def test_a_broker_outage_at_commit_answers_normally_and_the_sweep_sends_it_later(
    client: Client,
    coached: Report,
    coach: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(release_send_task, "apply_async", refuse)
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/reports/{coached.id}/release/", follow=True)
    assert response.status_code == 200
    release = Release.objects.get(report=coached)
    # the job is the row: still queued, nothing failed, nothing lost
    assert (release.status, release.last_error) == (Release.Status.QUEUED, "")
    assert "being emailed" in client.get(f"/reports/{coached.id}/").content.decode()
    # the broker is back: the sweep rings, a worker sends it
    monkeypatch.undo()
    celery_app.conf.task_always_eager = True
    try:
        assert jobs_sweep() == {"releases": 1}
    finally:
        celery_app.conf.task_always_eager = False
    release.refresh_from_db()
    assert release.status == Release.Status.SENT
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_only_a_failed_release_can_be_tried_again(
    client: Client,
    coached: Report,
    coach: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        release_id = client.post(f"/api/reports/{coached.id}/release/").json()["id"]
    assert Release.objects.get(id=release_id).status == Release.Status.SENT
    refused = client.post(f"/api/reports/{coached.id}/releases/{release_id}/retry/")
    assert refused.status_code == 400
    assert refused.json() == {"non_field_errors": ["Only a release whose email failed can be tried again."]}
    page = client.post(f"/reports/{coached.id}/releases/{release_id}/retry/", follow=True).content.decode()
    assert "Only a release whose email failed can be tried again." in page
    assert len(mail.outbox) == 1
    # a revoked failure stays revoked
    Release.objects.filter(id=release_id).update(status=Release.Status.FAILED, revoked_at=timezone.now())
    assert client.post(f"/api/reports/{coached.id}/releases/{release_id}/retry/").status_code == 400
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_trying_again_replaces_the_link_of_the_failed_attempt(
    client: Client,
    coached: Report,
    coach: Any,
    eager_celery: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client.force_login(coach)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/reports/{coached.id}/release/")
    first = token_in(mail.outbox[0].body)
    release = Release.objects.get(report=coached)
    # As if that email had bounced later: the coach sends it again.
    Release.objects.filter(id=release.id).update(status=Release.Status.FAILED, last_error="SMTPDataError: 451")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/reports/{coached.id}/releases/{release.id}/retry/", follow=True)
    assert "will be emailed to jonas@example.test" in response.content.decode()
    second = token_in(mail.outbox[1].body)
    assert Client().get(f"/r/{first}/").status_code == 404
    assert Client().get(f"/r/{second}/").status_code == 200
    release.refresh_from_db()
    assert (release.status, release.attempts, release.last_error) == (Release.Status.SENT, 1, "")


@pytest.mark.django_db
def test_release_list_api_in_constant_queries(
    client: Client, coached: Report, coach: Any, django_assert_max_num_queries: Any
) -> None:
    for index in range(3):
        Release.objects.create(report=coached, email=f"jonas{index}@example.test", status=Release.Status.SENT)
    client.force_login(coach)
    # session, user, report, coach check, releases
    with django_assert_max_num_queries(5):
        rows = client.get(f"/api/reports/{coached.id}/releases/").json()
    assert len(rows) == 3
    for index in range(5):
        Release.objects.create(report=coached, email=f"more{index}@example.test", status=Release.Status.FAILED)
    with django_assert_max_num_queries(5):
        assert len(client.get(f"/api/reports/{coached.id}/releases/").json()) == 8


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_release_after_a_refusal(
    client: Client,
    coach: Any,
    manager: Any,
    default_questionnaire: Any,
    celery_worker: Any,
    smtp_server: Callable[..., MailServer],
    settings: Any,
) -> None:
    from tests.factories import CycleFactory, PersonFactory, SubjectFactory

    cycle = CycleFactory(team__manager=manager, name="Worker cycle", status="closed", closed_at=timezone.now())
    subject = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, email="ines@example.test"))
    report = stored_report_create(subject)
    CoachAssignment.objects.create(coach=coach, cycle=cycle)
    settings.JOB_RETRY_BACKOFF_SECONDS = 0.2
    server = smtp_server(refuse_first=1)
    client.force_login(coach)
    # when: the request commits, and the job goes through Redis to the worker
    assert client.post(f"/api/reports/{report.id}/release/").status_code == 201
    release = Release.objects.get(report=report)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Release.objects.get(id=release.id).status != Release.Status.SENT:
        time.sleep(0.2)
    # then
    release.refresh_from_db()
    assert (release.status, release.attempts) == (Release.Status.SENT, 2)
    (message,) = server.delivered
    assert len(server.refused) == 1
    assert Client().get(f"/r/{token_in(text_of(message))}/").status_code == 200
    assert Client().get(f"/r/{token_in(text_of(server.refused[0]))}/").status_code == 404


@pytest.mark.django_db
def test_a_failed_release_opens_nothing_and_is_not_retried_beside_a_live_one(coached: Report, coach: Any) -> None:
    # given: a release given up on whose email did reach the person after all, then a
    # second release that went out
    failed = Release.objects.create(
        report=coached, email="jonas@example.test", status=Release.Status.FAILED, token_hash=token_hash("first-link")
    )
    Release.objects.create(
        report=coached, email="jonas@example.test", status=Release.Status.SENT, token_hash=token_hash("second-link")
    )
    # then: only the second link opens the report
    assert Client().get("/r/first-link/").status_code == 404
    assert Client().get("/r/second-link/").status_code == 200
    # and trying the failed one again would make two working links: refused, nothing queued
    client = Client()
    client.force_login(coach)
    response = client.post(f"/api/reports/{coached.id}/releases/{failed.id}/retry/")
    assert response.status_code == 400
    assert "Another download link of this report is live" in str(response.json())
    failed.refresh_from_db()
    assert failed.status == Release.Status.FAILED


@pytest.mark.django_db
def test_a_release_revoked_after_its_job_was_claimed_is_not_sent(
    coached: Report, coach: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with django_capture_on_commit_callbacks(execute=False):
        release, _ = services.report_release(report=coached, by=coach)
    # the coach revokes while the worker, having claimed the job, makes the link
    real_token_new = services.token_new

    def token_then_revoke() -> str:
        services.release_revoke(release=Release.objects.get(id=release.id))
        return real_token_new()

    monkeypatch.setattr(services, "token_new", token_then_revoke)
    assert services.release_send(release_id=release.id) == Release.Status.QUEUED
    assert mail.outbox == []
    release.refresh_from_db()
    assert release.revoked_at is not None
    # never claimed again
    assert services.release_send(release_id=release.id) == ""
    assert mail.outbox == []
