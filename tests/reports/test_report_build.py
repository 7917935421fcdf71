"""Report jobs: queueing, claiming, building, failing, retrying and re-running."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone

from config.jobs import jobs_claim
from reports import services
from reports.models import REPORTS, Report
from reports.rendering import pdf_checksum, report_html
from surveys.models import Cycle, Group
from surveys.signals import cycle_closed
from tests.factories import CycleFactory, PersonFactory, ResponseFactory, SubjectFactory
from tests.reports.helpers import answers_create, ratings_for

BUILD = "reports.build"


@pytest.fixture
def sent(doorbells: list[tuple[str, float | None]]) -> list[str]:
    """The report doorbells rung (task names), recorded instead of sent."""

    class Rung(list[str]):
        def __eq__(self, other: object) -> bool:
            return [name for name, _ in doorbells if name == BUILD] == other

    return Rung()


def queued_report(subject: Any) -> Report:
    return Report.objects.create(cycle=subject.cycle, subject=subject)


@pytest.mark.django_db
def test_enqueue_creates_one_report_per_subject_and_sends_jobs_on_commit(
    closed_cycle: Cycle, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    subjects = [SubjectFactory(cycle=closed_cycle) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = services.report_enqueue_for_cycle(cycle=closed_cycle)
    # nothing reaches the broker before the transaction commits
    assert sent == []
    for callback in callbacks:
        callback()
    # one doorbell per report (each worker claims one at a time); the rows are the jobs
    assert sent == [BUILD] * len(ids)
    assert Report.objects.filter(cycle=closed_cycle, status=Report.Status.QUEUED).count() == len(subjects)


@pytest.mark.django_db
def test_enqueue_again_resets_instead_of_duplicating(
    closed_cycle: Cycle, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    subject = SubjectFactory(cycle=closed_cycle)
    report = Report.objects.create(
        cycle=closed_cycle, subject=subject, status=Report.Status.FAILED, attempts=3, reason="boom", data={"x": 1}
    )
    with django_capture_on_commit_callbacks(execute=True):
        ids = services.report_enqueue_for_cycle(cycle=closed_cycle)
    assert ids == [report.id]
    report.refresh_from_db()
    assert (report.status, report.attempts, report.reason, report.data) == (Report.Status.QUEUED, 0, "", {})
    assert Report.objects.filter(subject=subject).count() == 1
    assert sent == [BUILD]


@pytest.mark.django_db
def test_cycle_closed_signal_queues_the_reports(
    closed_cycle: Cycle, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    subject = SubjectFactory(cycle=closed_cycle)
    with django_capture_on_commit_callbacks(execute=True):
        cycle_closed.send(sender=Cycle, cycle=closed_cycle)
    assert Report.objects.get(subject=subject).status == Report.Status.QUEUED
    assert sent == [BUILD]


@pytest.mark.django_db
def test_build_stores_ready_report_with_pdf_size_and_checksum(subject: Any) -> None:
    report = queued_report(subject)
    assert services.report_build(report_id=report.id) == Report.Status.READY
    report.refresh_from_db()
    assert report.status == Report.Status.READY
    assert report.attempts == 1
    pdf = bytes(report.pdf)
    assert pdf.startswith(b"%PDF")
    assert report.pdf_size == len(pdf)
    assert report.pdf_sha256 == pdf_checksum(pdf)
    assert report.data["subject"]["name"] == "Jonas Berg"
    assert report.data["cycle"]["name"] == "Spring 2026"
    assert report.data["balance"] is not None


@pytest.mark.django_db
def test_build_uses_a_fixed_number_of_queries(subject: Any, django_assert_num_queries: Any) -> None:
    first = queued_report(subject)
    # claim (savepoint, locked select, update, release), started, report, dimensions, items,
    # responses, previous report, invitation counts, store
    with django_assert_num_queries(12):
        services.report_build(report_id=first.id)

    other = SubjectFactory(cycle=subject.cycle)
    answers_create(other, peers=6, direct_reports=6)
    second = queued_report(other)
    with django_assert_num_queries(12):
        services.report_build(report_id=second.id)


@pytest.mark.django_db
def test_second_delivery_of_the_same_job_does_nothing(subject: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    report = queued_report(subject)
    assert jobs_claim(REPORTS, owner="first", ids=[report.id]) == [report.id]
    assert jobs_claim(REPORTS, owner="second", ids=[report.id]) == []
    report.refresh_from_db()
    assert (report.attempts, report.claimed_by) == (1, "first")

    ready = SubjectFactory(cycle=subject.cycle)
    done = Report.objects.create(cycle=ready.cycle, subject=ready, status=Report.Status.READY, attempts=1)
    monkeypatch.setattr(services, "report_pdf_render", lambda **kwargs: pytest.fail("must not render again"))
    assert services.report_build(report_id=done.id) == ""
    done.refresh_from_db()
    assert done.attempts == 1


@pytest.mark.django_db
def test_failure_is_recorded_with_its_reason(subject: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> bytes:
        raise ValueError("font missing")

    monkeypatch.setattr(services, "report_pdf_render", broken)
    report = queued_report(subject)
    assert services.report_build(report_id=report.id) == Report.Status.FAILED
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert report.reason == "ValueError: font missing"
    assert report.pdf is None


@pytest.mark.django_db
def test_transient_error_is_retried_with_backoff_then_gives_up(
    subject: Any, monkeypatch: pytest.MonkeyPatch, doorbells: list[tuple[str, float | None]]
) -> None:
    def flaky(**kwargs: Any) -> bytes:
        raise OperationalError("connection reset")

    monkeypatch.setattr(services, "report_pdf_render", flaky)
    report = queued_report(subject)
    delays = []
    for _ in range(Report.MAX_ATTEMPTS - 1):
        assert services.report_build(report_id=report.id) == Report.Status.QUEUED
        report.refresh_from_db()
        # the retry's time is in the database; a countdown doorbell is only the fast path
        delays.append(round((report.not_before - timezone.now()).total_seconds()))
        assert services.report_build(report_id=report.id) == "", "not claimed before its back-off"
        Report.objects.filter(id=report.id).update(not_before=timezone.now())
    assert delays == [30, 60]
    assert [countdown for _, countdown in doorbells] == [30.0, 60.0]
    assert services.report_build(report_id=report.id) == Report.Status.FAILED
    report.refresh_from_db()
    assert report.attempts == Report.MAX_ATTEMPTS
    assert report.reason.startswith("Gave up after 3 attempts: OperationalError")


@pytest.mark.django_db
def test_a_run_that_keeps_killing_its_worker_stops_at_the_attempt_limit(subject: Any) -> None:
    long_ago = timezone.now() - timedelta(hours=2)
    report = Report.objects.create(
        cycle=subject.cycle,
        subject=subject,
        status=Report.Status.RUNNING,
        attempts=Report.MAX_ATTEMPTS,
        claimed_by="dead worker",
        claimed_at=long_ago,
    )
    assert services.report_build(report_id=report.id) == ""
    report.refresh_from_db()
    assert report.status == Report.Status.FAILED
    assert "Gave up after 3 attempts" in report.reason


@pytest.mark.django_db
def test_a_dead_run_is_taken_over_once_its_lease_lapses_and_a_live_one_is_left_alone(subject: Any) -> None:
    lapsed = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    stale = Report.objects.create(
        cycle=subject.cycle, subject=subject, status=Report.Status.RUNNING, attempts=1, claimed_at=lapsed
    )
    assert services.report_build(report_id=stale.id) == Report.Status.READY
    stale.refresh_from_db()
    assert stale.attempts == 2

    other = SubjectFactory(cycle=subject.cycle)
    renewed = timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS - 5)
    live = Report.objects.create(
        cycle=other.cycle, subject=other, status=Report.Status.RUNNING, attempts=1, claimed_at=renewed
    )
    assert services.report_build(report_id=live.id) == ""
    live.refresh_from_db()
    assert (live.status, live.attempts) == (Report.Status.RUNNING, 1)


@pytest.mark.django_db
def test_rerun_queues_a_failed_report_with_a_fresh_attempt_budget(
    subject: Any, manager: Any, sent: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    report = Report.objects.create(
        cycle=subject.cycle, subject=subject, status=Report.Status.FAILED, attempts=3, reason="boom"
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.report_rerun(report=report, by=manager)
    report.refresh_from_db()
    assert (report.status, report.attempts, report.reason) == (Report.Status.QUEUED, 0, "")
    assert sent == [BUILD]


@pytest.mark.django_db
def test_rerun_refuses_a_report_that_did_not_fail(subject: Any, manager: Any) -> None:
    report = Report.objects.create(cycle=subject.cycle, subject=subject, status=Report.Status.READY)
    with pytest.raises(ValidationError, match="Only a failed report"):
        services.report_rerun(report=report, by=manager)


@pytest.mark.django_db
def test_change_since_the_previous_closed_cycle_of_the_same_person(subject: Any) -> None:
    person = subject.person
    earlier = CycleFactory(
        team=subject.cycle.team,
        name="Autumn 2025",
        status=Cycle.Status.CLOSED,
        closed_at=subject.cycle.closed_at - timedelta(days=180),
    )
    earlier_subject = SubjectFactory(cycle=earlier, person=person)
    for seed in range(3):
        ResponseFactory(
            subject=earlier_subject,
            group=Group.PEER,
            ratings=ratings_for(earlier, management=2, leadership=2, seed=seed),
        )
    earlier_report = queued_report(earlier_subject)
    services.report_build(report_id=earlier_report.id)

    report = queued_report(subject)
    services.report_build(report_id=report.id)
    report.refresh_from_db()
    trend = report.data["trend"]
    assert trend["cycle"] == "Autumn 2025"
    assert trend["indices"]["management"]["change"] > 0
    assert len(trend["dimensions"]) == 6
    # the plane draws the earlier Others point, named by its cycle, and an arrow from it
    html = report_html(data=report.data, for_pdf=True)
    plane = html[html.index('class="plane-chart') : html.index("</figure>")]
    assert '<span class="plane-label earlier' in plane and "Autumn 2025" in plane and "<polygon" in plane
    assert "Others in “Autumn 2025”, the arrow shows the change" in html


@pytest.mark.django_db(transaction=True)
def test_closing_a_cycle_gets_every_report_ready_through_a_real_worker(
    celery_worker: Any, manager: Any, default_questionnaire: Any
) -> None:
    cycle = CycleFactory(
        team__manager=manager, name="Worker cycle", status=Cycle.Status.CLOSED, closed_at=timezone.now()
    )
    subjects = [SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team)) for _ in range(3)]
    for subject in subjects:
        answers_create(subject, comments=False)
    with transaction.atomic():
        cycle_closed.send(sender=Cycle, cycle=cycle)

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        statuses = set(Report.objects.filter(cycle=cycle).values_list("status", flat=True))
        if statuses == {Report.Status.READY}:
            break
        time.sleep(0.3)
    reports = list(Report.objects.filter(cycle=cycle))
    assert len(reports) == 3
    assert {report.status for report in reports} == {Report.Status.READY}
    assert all(bytes(report.pdf).startswith(b"%PDF") and report.attempts == 1 for report in reports)


@pytest.mark.django_db
def test_closing_a_cycle_through_the_surveys_service_queues_its_reports(
    manager: Any, sent: list[int], django_capture_on_commit_callbacks: Any, default_questionnaire: Any
) -> None:
    from surveys.services import cycle_close

    cycle = CycleFactory(team__manager=manager, status=Cycle.Status.OPEN)
    subjects = [SubjectFactory(cycle=cycle) for _ in range(2)]
    with django_capture_on_commit_callbacks(execute=True):
        assert cycle_close(cycle=cycle, by=manager) is True
    reports = Report.objects.filter(cycle=cycle)
    assert {report.subject_id for report in reports} == {subject.id for subject in subjects}
    assert sent == [BUILD] * len(subjects)


@pytest.mark.django_db
def test_no_trend_from_an_earlier_report_built_under_a_smaller_k(subject: Any) -> None:
    # given: the earlier cycle allowed figures from 2 anonymous raters, this one needs 3
    Cycle.objects.filter(pk=subject.cycle_id).update(anonymity_min=3)
    subject.cycle.refresh_from_db()
    earlier = CycleFactory(
        team=subject.cycle.team,
        name="Autumn 2025",
        status=Cycle.Status.CLOSED,
        closed_at=subject.cycle.closed_at - timedelta(days=180),
        anonymity_min=2,
    )
    earlier_subject = SubjectFactory(cycle=earlier, person=subject.person)
    for seed in range(2):
        ResponseFactory(
            subject=earlier_subject,
            group=Group.PEER,
            ratings=ratings_for(earlier, management=2, leadership=2, seed=seed),
        )
    earlier_report = queued_report(earlier_subject)
    services.report_build(report_id=earlier_report.id)
    earlier_report.refresh_from_db()
    assert earlier_report.data["indices"]["others"]["management"]["n"] == 2  # shown under k=2
    # when
    report = queued_report(subject)
    services.report_build(report_id=report.id)
    report.refresh_from_db()
    # then: its two-rater figures do not reappear as this report's "before"
    assert not report.data.get("trend")
