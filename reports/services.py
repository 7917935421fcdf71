"""Writes: queue and build reports, re-run failed ones, assign coaches, release to subjects."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from config.links import token_hash, token_new
from config.token_routes import RELEASE, token_url
from reports import emails
from reports.models import RELEASE_VALID_FOR, CoachAssignment, Release, Report
from reports.reading import report_reading, text_bank_load
from reports.rendering import pdf_checksum, report_pdf_render
from reports.scoring import Rules, report_compute, report_data
from reports.selectors import report_build_input
from surveys.models import Cycle, Invitation, Subject
from surveys.selectors import chose_raters_for

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
        quadrant_cut=Fraction(str(settings.BALANCE_QUADRANT_CUT)),
    )
    result = report_compute(raters=build.raters, dimensions=build.dimensions, rules=rules)
    data = report_data(result=result, previous=build.previous)
    data["raters"] = {
        "anonymous_invited": build.anonymous_invited,
        "added_by_manager": build.sources[Invitation.Source.MANAGER],
        "from_reporting_lines": build.sources[Invitation.Source.REPORTING_LINES],
        "nominated": build.sources[Invitation.Source.NOMINATED],
        "not_recorded": build.sources[Invitation.Source.UNKNOWN],
    }
    data["subject"] = {"name": build.report.subject.person.name, "person_id": build.report.subject.person_id}
    data["cycle"] = {
        "id": cycle.id,
        "name": cycle.name,
        "closed_at": cycle.closed_at.isoformat() if cycle.closed_at else None,
    }
    # Written from the figures above only, and stored with the text bank's version.
    data["reading"] = report_reading(data=data, bank=text_bank_load())
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
    people = [subject.person_id] if subject is not None else list(cycle.subjects.values_list("person_id", flat=True))
    if chose_raters_for(user=coach, person_ids=people):
        # The manager chooses the raters, so reading reports would let them subtract the
        # answers of raters they control; coaching their own cycle would reopen that door,
        # and so would coaching the people of an earlier cycle they managed, whose figures
        # come back in the trend.
        raise ValidationError(
            {"coach": "This person managed a review of these people and chose their raters; choose someone else."}
        )
    with transaction.atomic():
        assignment, _ = CoachAssignment.objects.get_or_create(
            coach=coach, cycle=cycle, subject=subject, defaults={"created_by": by}
        )
    return assignment


def coach_unassign(*, assignment: CoachAssignment) -> None:
    assignment.delete()


def release_live(*, report: Report) -> Release | None:
    """The report's release whose link works or is on its way, if any: not revoked, not
    expired, and not given up on (a failed email is tried again with ``release_retry``)."""
    return (
        Release.objects.filter(report=report, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .exclude(status=Release.Status.FAILED)
        .order_by("-created_at", "-id")
        .first()
    )


def _release_lock(*, report: Report) -> Release | None:
    """Inside the caller's transaction: lock the report row (the one lock of every release
    change, so concurrent ones queue up), check it is ready, return its live release."""
    status = Report.objects.select_for_update().filter(id=report.id).values_list("status", flat=True).first()
    if status != Report.Status.READY:
        raise ValidationError("Only a ready report can be released.")
    return release_live(report=report)


def report_release(*, report: Report, by: User) -> tuple[Release, bool]:
    """Release the ready report to its subject: ``(release, created)``.

    While a release is live (its link works or its email is on the way) that release is
    returned and nothing is sent: a double click, a second tab or a retried request
    never emails the person twice or puts two links in circulation. The report row is
    locked while looking, so concurrent releases queue up and all find the first one.

    The email (and the download link in it) is made by ``release_send`` in a background
    job, so a mail server that is down delays the link and never fails the coach's
    request. The raw token exists only in that email; the database keeps its SHA-256.
    """
    with transaction.atomic():
        live = _release_lock(report=report)
        if live is not None:
            return live, False
        # The address locked at launch, not the person's current one (see Subject.release_email).
        email = report.subject.release_email or report.subject.person.email
        release = Release.objects.create(report=report, email=email, created_by=by)
        transaction.on_commit(partial(_release_enqueue, release.id))
    return release, True


def _release_enqueue(release_id: int) -> None:
    from reports.tasks import release_send_task

    try:
        release_send_task.delay(release_id)
    except Exception as error:
        # This runs after the commit, still inside the coach's request. Whatever keeps the
        # job from reaching the broker (Redis down, a network error), the request must not
        # fail for it, and the release must not wait for a job that will never run: it is
        # marked failed, with the reason on the coach's page, and can be tried again.
        logger.error("release %s: email job could not be queued: %s", release_id, type(error).__name__)
        Release.objects.filter(id=release_id, status=Release.Status.QUEUED).update(
            status=Release.Status.FAILED, last_error=_error_describe(error, prefix="The email could not be queued")
        )


def release_retry(*, release: Release, by: User) -> Release:
    """Queue the email of a failed release again, with a fresh attempt budget.

    Refused while another release of the report is live: one working link at a time,
    as ``report_release`` keeps it.
    """
    with transaction.atomic():
        live = _release_lock(report=release.report)
        if live is not None and live.pk != release.pk:
            raise ValidationError("Another download link of this report is live; revoke it first.")
        updated = Release.objects.filter(id=release.id, status=Release.Status.FAILED, revoked_at__isnull=True).update(
            status=Release.Status.QUEUED, attempts=0, last_error="", claimed_at=None, token_hash=None
        )
        if not updated:
            raise ValidationError("Only a release whose email failed can be tried again.")
        transaction.on_commit(partial(_release_enqueue, release.id))
    logger.info("release %s queued again by user %s", release.id, by.pk)
    release.refresh_from_db()
    return release


@dataclass(frozen=True)
class ReleaseOutcome:
    status: str
    retry: bool = False
    # Set when the job should look again after this many seconds rather than its backoff.
    retry_in: float | None = None


def release_claim(*, release_id: int) -> bool:
    """Take the release's email for this job: queued (or a stale, dead send) → sending.

    The conditional UPDATE is the lock: of two deliveries of the same job only one sends
    the email. A revoked release is never claimed, so its email never goes out.
    """
    now = timezone.now()
    updated = (
        Release.objects.filter(id=release_id, revoked_at__isnull=True)
        .filter(Q(status=Release.Status.QUEUED) | Q(status=Release.Status.SENDING, claimed_at__lt=_stale_before()))
        .update(status=Release.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    return updated == 1


def _release_fail(*, release_id: int, reason: str) -> None:
    Release.objects.filter(id=release_id).exclude(status=Release.Status.SENT).update(
        status=Release.Status.FAILED, last_error=reason[:500]
    )


def _after_lost_release_claim(*, release_id: int, last_try: bool) -> ReleaseOutcome:
    row = Release.objects.filter(id=release_id).values("status", "revoked_at", "claimed_at").first()
    if row is None:
        return ReleaseOutcome(status="missing")
    if row["revoked_at"] is not None:
        return ReleaseOutcome(status="revoked")
    if row["status"] == Release.Status.SENDING and row["claimed_at"] is not None:
        # Another delivery is sending it, or its worker died mid-send: look again once a
        # live send would have hit the time limit, and give up visibly in the end.
        if last_try:
            _release_fail(release_id=release_id, reason="The email job kept stopping before it finished.")
            return ReleaseOutcome(status=Release.Status.FAILED)
        remaining = (row["claimed_at"] - _stale_before()).total_seconds()
        return ReleaseOutcome(status=row["status"], retry=True, retry_in=max(remaining, 1.0) + 1.0)
    return ReleaseOutcome(status=row["status"])


def _smtp_error_is_permanent(error: Exception) -> bool:
    """A 5xx answer means retrying cannot help (unknown mailbox, rejected content)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def _error_describe(error: BaseException, prefix: str = "") -> str:
    text = f"{type(error).__name__}: {error}"
    return (f"{prefix}: {text}" if prefix else text)[:500]


def release_send(*, release_id: int, last_try: bool) -> ReleaseOutcome:
    """Send the release's email with a new download link; record how it went on the row.

    The link is made now and only its hash is stored, replacing the hash of any earlier
    attempt: of all the emails tried for a release, only the last one's link works, and
    it works for ``RELEASE_VALID_FOR`` from that email. A transient failure (the server
    refuses for now, or cannot be reached) puts the row back to queued and asks for a
    retry, unless this is the ``last_try``; then, as for a permanent refusal, the row ends
    failed with the reason, which the coach sees on the report page.
    """
    if not release_claim(release_id=release_id):
        return _after_lost_release_claim(release_id=release_id, last_try=last_try)
    release = (
        Release.objects.select_related("report__cycle", "report__subject__person")
        .defer("report__pdf", "report__data")
        .get(id=release_id)
    )
    if release.report.status != Report.Status.READY:
        _release_fail(release_id=release_id, reason="The report is no longer ready: it is being built again.")
        return ReleaseOutcome(status=Release.Status.FAILED)
    token = token_new()
    release.expires_at = timezone.now() + RELEASE_VALID_FOR
    # Stored (and committed: no transaction is open here) before the email leaves, since
    # the person may click the link the moment it arrives.
    Release.objects.filter(id=release_id).update(token_hash=token_hash(token), expires_at=release.expires_at)
    try:
        if emails.report_release_email_send(release=release, link=token_url(RELEASE, token)) != 1:
            raise smtplib.SMTPException("the email backend did not accept the message")
    except (smtplib.SMTPException, OSError) as error:
        give_up = last_try or _smtp_error_is_permanent(error)
        Release.objects.filter(id=release_id, status=Release.Status.SENDING).update(
            status=Release.Status.FAILED if give_up else Release.Status.QUEUED, last_error=_error_describe(error)
        )
        logger.warning(
            "release %s: email not sent, %s: %s",
            release_id,
            "giving up" if give_up else "will retry",
            type(error).__name__,
        )
        if give_up:
            return ReleaseOutcome(status=Release.Status.FAILED)
        return ReleaseOutcome(status=Release.Status.QUEUED, retry=True)
    except Exception as error:
        # Anything else (a broken template, bad data) will not get better by retrying.
        logger.exception("release %s: email failed", release_id)
        _release_fail(release_id=release_id, reason=_error_describe(error))
        return ReleaseOutcome(status=Release.Status.FAILED)
    Release.objects.filter(id=release_id, status=Release.Status.SENDING).update(
        status=Release.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    return ReleaseOutcome(status=Release.Status.SENT)


def release_revoke(*, release: Release) -> Release:
    Release.objects.filter(id=release.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    release.refresh_from_db()
    return release
