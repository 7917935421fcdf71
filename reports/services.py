"""Writes: queue and build reports, re-run failed ones, assign coaches, release to subjects."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from reports import emails
from reports.models import CoachAssignment, Release, Report
from reports.rendering import pdf_checksum, report_pdf_render
from reports.scoring import Rules, report_compute, report_data
from reports.selectors import report_build_input
from surveys.links import public_url, token_hash, token_new
from surveys.models import Cycle, Subject

logger = logging.getLogger(__name__)

# Errors worth another try: the database went away or refused us for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
RETRY_BASE_SECONDS = 5


@dataclass(frozen=True)
class BuildOutcome:
    status: str
    retry_in: float | None = None


def _enqueue(report_ids: list[int]) -> None:
    from reports.tasks import report_build_task

    for report_id in report_ids:
        report_build_task.delay(report_id)


def report_enqueue_for_cycle(*, cycle: Cycle) -> list[int]:
    """Queue one report per subject of ``cycle``; an existing report is reset, never duplicated.

    The jobs are sent only when the surrounding transaction commits: a worker must never
    pick up a report whose cycle close could still roll back.
    """
    now = timezone.now()
    subject_ids = list(Subject.objects.filter(cycle=cycle).values_list("id", flat=True))
    with transaction.atomic():
        reports = Report.objects.bulk_create(
            [
                Report(
                    cycle=cycle,
                    subject_id=subject_id,
                    status=Report.Status.QUEUED,
                    reason="",
                    attempts=0,
                    data={},
                    pdf=None,
                    pdf_size=0,
                    pdf_sha256="",
                    queued_at=now,
                    started_at=None,
                    finished_at=None,
                )
                for subject_id in subject_ids
            ],
            update_conflicts=True,
            unique_fields=["cycle", "subject"],
            update_fields=[
                "status",
                "reason",
                "attempts",
                "data",
                "pdf",
                "pdf_size",
                "pdf_sha256",
                "queued_at",
                "started_at",
                "finished_at",
                "updated_at",
            ],
        )
        report_ids = [report.pk for report in reports]
        transaction.on_commit(lambda: _enqueue(report_ids))
    return report_ids


def _stale_before() -> Any:
    # A run older than the hard task time limit cannot still be alive: Celery killed it.
    return timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)


def report_claim(*, report_id: int) -> bool:
    """Take the report for this worker: queued (or a stale, dead run) → running, one attempt more.

    The conditional UPDATE is the lock: of two deliveries of the same job only one gets a
    row back. ``attempts`` is counted in the database, so a job that kills its worker
    every time (and is redelivered every time) stops at ``Report.MAX_ATTEMPTS``.
    """
    updated = (
        Report.objects.filter(id=report_id, attempts__lt=Report.MAX_ATTEMPTS)
        .filter(Q(status=Report.Status.QUEUED) | Q(status=Report.Status.RUNNING, started_at__lt=_stale_before()))
        .update(status=Report.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), reason="")
    )
    return updated == 1


def _report_fail(*, report_id: int, reason: str) -> None:
    Report.objects.filter(id=report_id).exclude(status=Report.Status.READY).update(
        status=Report.Status.FAILED, reason=reason[:2000], finished_at=timezone.now()
    )


def _after_lost_claim(*, report_id: int) -> BuildOutcome:
    row = Report.objects.filter(id=report_id).values("status", "attempts", "started_at").first()
    if row is None:
        return BuildOutcome(status="missing")
    status = row["status"]
    if status in (Report.Status.READY, Report.Status.FAILED):
        return BuildOutcome(status=status)
    if row["attempts"] >= Report.MAX_ATTEMPTS:
        _report_fail(
            report_id=report_id,
            reason=f"Gave up after {row['attempts']} attempts: the build kept stopping before it finished.",
        )
        return BuildOutcome(status=Report.Status.FAILED)
    if status == Report.Status.RUNNING and row["started_at"] is not None:
        # Another delivery is running it, or its worker died: look again once a live run
        # would have hit the time limit.
        remaining = (row["started_at"] - _stale_before()).total_seconds()
        return BuildOutcome(status=status, retry_in=max(remaining, 1.0) + 1.0)
    return BuildOutcome(status=status)


def report_data_compute(*, report_id: int) -> dict[str, Any]:
    """The stored report JSON for one report: filtered figures plus names and trend."""
    build = report_build_input(report_id=report_id)
    cycle = build.report.cycle
    rules = Rules(
        k=cycle.anonymity_min,
        comment_min=max(cycle.comment_threshold, cycle.anonymity_min),
        quadrant_cut=float(settings.BALANCE_QUADRANT_CUT),
    )
    result = report_compute(raters=build.raters, dimensions=build.dimensions, rules=rules)
    data = report_data(result=result, previous=build.previous)
    data["subject"] = {"name": build.report.subject.person.name, "person_id": build.report.subject.person_id}
    data["cycle"] = {
        "id": cycle.id,
        "name": cycle.name,
        "closed_at": cycle.closed_at.isoformat() if cycle.closed_at else None,
    }
    return data


def report_build(*, report_id: int) -> BuildOutcome:
    """Claim, compute, render and store one report; record the reason when it fails."""
    if not report_claim(report_id=report_id):
        return _after_lost_claim(report_id=report_id)
    try:
        data = report_data_compute(report_id=report_id)
        pdf = report_pdf_render(data=data)
    except TRANSIENT_ERRORS as error:
        attempts = Report.objects.filter(id=report_id).values_list("attempts", flat=True).first() or 0
        if attempts < Report.MAX_ATTEMPTS:
            Report.objects.filter(id=report_id, status=Report.Status.RUNNING).update(
                status=Report.Status.QUEUED, reason=f"Retrying after: {type(error).__name__}"
            )
            logger.warning("report %s: transient %s, retrying", report_id, type(error).__name__)
            return BuildOutcome(status=Report.Status.QUEUED, retry_in=RETRY_BASE_SECONDS * 2 ** (attempts - 1))
        _report_fail(report_id=report_id, reason=f"Gave up after {attempts} attempts: {type(error).__name__}: {error}")
        return BuildOutcome(status=Report.Status.FAILED)
    except Exception as error:
        # Anything else will not get better by retrying (bad data, a bug, the soft time
        # limit): record why and stop, so a coach or manager can re-run it after a fix.
        logger.exception("report %s failed", report_id)
        _report_fail(report_id=report_id, reason=f"{type(error).__name__}: {error}")
        return BuildOutcome(status=Report.Status.FAILED)
    stored = Report.objects.filter(id=report_id, status=Report.Status.RUNNING).update(
        status=Report.Status.READY,
        reason="",
        data=data,
        pdf=pdf,
        pdf_size=len(pdf),
        pdf_sha256=pdf_checksum(pdf),
        finished_at=timezone.now(),
    )
    return BuildOutcome(status=Report.Status.READY if stored else "superseded")


def report_rerun(*, report: Report, by: User) -> Report:
    """Queue a failed report again with a fresh attempt budget."""
    with transaction.atomic():
        updated = Report.objects.filter(id=report.id, status=Report.Status.FAILED).update(
            status=Report.Status.QUEUED, attempts=0, reason="", queued_at=timezone.now(), started_at=None
        )
        if not updated:
            raise ValidationError("Only a failed report can be re-run.")
        report_id = report.id
        transaction.on_commit(lambda: _enqueue([report_id]))
    logger.info("report %s re-run by user %s", report.id, by.pk)
    report.refresh_from_db()
    return report


def coach_assign(*, cycle: Cycle, coach: User, by: User, subject: Subject | None = None) -> CoachAssignment:
    """Let ``coach`` read the reports of one subject of ``cycle``, or of the whole cycle."""
    if subject is not None and subject.cycle_id != cycle.id:
        raise ValidationError({"subject": "This person is not a subject of the cycle."})
    with transaction.atomic():
        assignment, _ = CoachAssignment.objects.get_or_create(
            coach=coach, cycle=cycle, subject=subject, defaults={"created_by": by}
        )
    return assignment


def coach_unassign(*, assignment: CoachAssignment) -> None:
    assignment.delete()


def report_release(*, report: Report, by: User) -> Release:
    """Email the subject a download link for their ready report; the link expires and can be revoked.

    The raw token exists only in the email; the database keeps its SHA-256. If the email
    cannot be sent the release is rolled back, so no link exists that nobody received.
    """
    if report.status != Report.Status.READY:
        raise ValidationError("Only a ready report can be released.")
    token = token_new()
    with transaction.atomic():
        release = Release.objects.create(
            report=report, token_hash=token_hash(token), email=report.subject.person.email, created_by=by
        )
        emails.report_release_email_send(release=release, link=public_url(f"/r/{token}/"))
    return release


def release_revoke(*, release: Release) -> Release:
    Release.objects.filter(id=release.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    release.refresh_from_db()
    return release
