"""Writes: queue and build reports, re-run failed ones, assign coaches, release to subjects."""

from __future__ import annotations

import logging
import smtplib
from fractions import Fraction
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from config.jobs import (
    Lease,
    error_describe,
    job_fail,
    job_finish,
    job_hand_over,
    job_requeue,
    job_retry_later,
    job_run_one,
    jobs_ring_on_commit,
    jobs_work,
    smtp_error_is_permanent,
)
from config.links import token_hash, token_new
from config.token_routes import RELEASE, token_url
from reports import emails
from reports.models import RELEASE_VALID_FOR, RELEASES, REPORTS, CoachAssignment, Release, Report
from reports.reading import report_reading, text_bank_load
from reports.rendering import pdf_checksum, report_pdf_render
from reports.scoring import Rules, report_compute, report_data
from reports.selectors import coach_candidates, report_build_input
from surveys.models import Cycle, Invitation, Subject
from surveys.selectors import chose_raters_for, people_rated_anonymously

logger = logging.getLogger(__name__)

# Errors worth another try: the database went away or refused us for a moment.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def report_enqueue_for_cycle(*, cycle: Cycle) -> list[int]:
    """Queue one report per subject of ``cycle``; an existing report is reset, never duplicated.

    The rows are the jobs: workers are rung only once the surrounding transaction commits
    (a worker must never pick up a report whose cycle close could still roll back), and if
    that ring is lost the sweep rings again.
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
                    claimed_by="",
                    claimed_at=None,
                    handed_at=None,
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
                "not_before",
                "claimed_by",
                "claimed_at",
                "handed_at",
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
        jobs_ring_on_commit(REPORTS, jobs=len(reports))
    return [report.pk for report in reports]


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
    data = report_data(result=result, previous=build.previous, nominated_outside=build.nominated_outside)
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


def report_build(*, report_id: int | None = None) -> str:
    """Claim one due report (``report_id``, or the next due one), build it, store the
    outcome; returns its status, or "" when nothing was claimed."""
    return job_run_one(REPORTS, _report_build_claimed, pk=report_id) or ""


def reports_build_due(*, report_ids: list[int] | None = None) -> int:
    """Build due reports one after another (the doorbell task's body); returns how many were claimed."""
    return jobs_work(REPORTS, _report_build_claimed, ids=report_ids)


def _report_build_claimed(ids: list[int], owner: str, lease: Lease) -> str:
    (report_id,) = ids
    Report.objects.filter(id=report_id, claimed_by=owner).update(started_at=timezone.now(), reason="")
    try:
        data = report_data_compute(report_id=report_id)
        pdf = report_pdf_render(data=data)
    except TRANSIENT_ERRORS as error:
        logger.warning("report %s: transient %s, retrying", report_id, type(error).__name__)
        reason = f"{type(error).__name__}: {error}"
        retrying = job_retry_later(REPORTS, ids=ids, owner=owner, reason=reason)
        return Report.Status.QUEUED if retrying else Report.Status.FAILED
    except Exception as error:
        # Anything else will not get better by retrying (bad data, a bug, the soft time
        # limit): record why and stop, so a coach or manager can re-run it after a fix.
        logger.exception("report %s failed", report_id)
        job_fail(REPORTS, ids=ids, owner=owner, reason=f"{type(error).__name__}: {error}")
        return Report.Status.FAILED
    stored = job_finish(
        REPORTS,
        ids=ids,
        owner=owner,
        status=Report.Status.READY,
        reason="",
        data=data,
        pdf=pdf,
        pdf_size=len(pdf),
        pdf_sha256=pdf_checksum(pdf),
        finished_at=timezone.now(),
    )
    # Not stored: the claim was lost meanwhile (re-run, or taken over after a stall).
    return Report.Status.READY if stored else "superseded"


def report_rerun(*, report: Report, by: User) -> Report:
    """Queue a failed report again with a fresh attempt budget."""
    with transaction.atomic():
        requeued = job_requeue(
            REPORTS,
            ids=[report.id],
            from_status=Report.Status.FAILED,
            reason="",
            queued_at=timezone.now(),
            started_at=None,
        )
        if not requeued:
            raise ValidationError("Only a failed report can be re-run.")
        jobs_ring_on_commit(REPORTS, jobs=1)
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
    if people and set(people) <= people_rated_anonymously(user=coach, person_ids=people):
        # They know their own answer, and could subtract it from the figures of the others:
        # they can read no report of the people they rated. A coach of the whole cycle reads
        # the others' (those they rated are counted as having no coach).
        raise ValidationError(
            {
                "coach": "This person was asked to rate them as an anonymous rater and cannot read their report; "
                "choose someone else."
            }
        )
    if not coach_candidates(cycle=cycle).filter(pk=coach.pk).exists():
        # The page offers only these; the API and any other caller get the same rule, so a
        # manager cannot make a second account of their own a coach.
        raise ValidationError(
            {"coach": "Only a user in the Coaches group (or already coaching a cycle) can be a coach."}
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
        jobs_ring_on_commit(RELEASES, jobs=1)
    return release, True


def release_retry(*, release: Release, by: User) -> Release:
    """Queue the email of a failed release again, with a fresh attempt budget.

    Refused while another release of the report is live: one working link at a time,
    as ``report_release`` keeps it.
    """
    with transaction.atomic():
        live = _release_lock(report=release.report)
        if live is not None and live.pk != release.pk:
            raise ValidationError("Another download link of this report is live; revoke it first.")
        updated = job_requeue(
            RELEASES,
            ids=Release.objects.filter(id=release.id, revoked_at__isnull=True).values_list("id", flat=True),
            from_status=Release.Status.FAILED,
            last_error="",
            token_hash=None,
        )
        if not updated:
            raise ValidationError("Only a release whose email failed can be tried again.")
        jobs_ring_on_commit(RELEASES, jobs=1)
    logger.info("release %s queued again by user %s", release.id, by.pk)
    release.refresh_from_db()
    return release


def release_send(*, release_id: int | None = None) -> str:
    """Claim one due release (``release_id``, or the next due one) and send its email;
    returns its status, or "" when nothing was claimed."""
    return job_run_one(RELEASES, _release_send_claimed, pk=release_id) or ""


def releases_send_due(*, release_ids: list[int] | None = None) -> int:
    """Send due release emails one after another (the doorbell task's body)."""
    return jobs_work(RELEASES, _release_send_claimed, ids=release_ids)


def _release_send_claimed(ids: list[int], owner: str, lease: Lease) -> str:
    """Send the release's email with a new download link; record how it went on the row.

    The link is made now and only its hash is stored, replacing the hash of any earlier
    attempt: of all the emails tried for a release, only the last one's link works, and
    it works for ``RELEASE_VALID_FOR`` from that email. A transient failure (the server
    refuses for now, or cannot be reached) puts the row back for a later attempt; once the
    attempts are spent, or on a permanent refusal, the row ends failed with the reason,
    which the coach sees on the report page.
    """
    (release_id,) = ids
    release = (
        Release.objects.select_related("report__cycle", "report__subject__person")
        .defer("report__pdf", "report__data")
        .get(id=release_id)
    )
    if release.report.status != Report.Status.READY:
        job_fail(RELEASES, ids=ids, owner=owner, reason="The report is no longer ready: it is being built again.")
        return Release.Status.FAILED
    token = token_new()
    release.expires_at = timezone.now() + RELEASE_VALID_FOR
    # Stored (and committed: no transaction is open here) before the email leaves, since
    # the person may click the link the moment it arrives; only while the claim is ours.
    stored = Release.objects.filter(id=release_id, claimed_by=owner, status=Release.Status.SENDING).update(
        token_hash=token_hash(token), expires_at=release.expires_at
    )
    # The fence: still ours, not revoked meanwhile, its report still ready.
    if not stored or not job_hand_over(
        RELEASES, pk=release_id, owner=owner, still=Q(report__status=Report.Status.READY)
    ):
        logger.warning("release %s: not sent, its claim was lost or it was revoked meanwhile", release_id)
        return Release.Status.QUEUED
    try:
        if emails.report_release_email_send(release=release, link=token_url(RELEASE, token)) != 1:
            raise smtplib.SMTPException("the email backend did not accept the message")
    except (smtplib.SMTPException, OSError) as error:
        logger.warning("release %s: email not sent: %s", release_id, type(error).__name__)
        if smtp_error_is_permanent(error):
            job_fail(RELEASES, ids=ids, owner=owner, reason=error_describe(error))
            return Release.Status.FAILED
        retrying = job_retry_later(RELEASES, ids=ids, owner=owner, reason=error_describe(error))
        return Release.Status.QUEUED if retrying else Release.Status.FAILED
    except Exception as error:
        # Anything else (a broken template, bad data) will not get better by retrying.
        logger.exception("release %s: email failed", release_id)
        job_fail(RELEASES, ids=ids, owner=owner, reason=error_describe(error))
        return Release.Status.FAILED
    job_finish(RELEASES, ids=ids, owner=owner, status=Release.Status.SENT, sent_at=timezone.now(), last_error="")
    return Release.Status.SENT


def release_revoke(*, release: Release) -> Release:
    Release.objects.filter(id=release.id, revoked_at__isnull=True).update(revoked_at=timezone.now())
    release.refresh_from_db()
    return release
