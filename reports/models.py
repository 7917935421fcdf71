"""Balance reports, coach assignments and releases of a report to its subject."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from config.jobs import Job, JobKind, job_kind_register
from surveys.models import Cycle, Subject

RELEASE_VALID_FOR = timedelta(days=14)


class Report(Job):
    """One subject's balance report in one cycle: the filtered figures (JSON) and the PDF.

    One row per (cycle, subject): re-running a report resets and refills this row, so a
    report is never duplicated. ``attempts`` counts claims of the build job; a job that
    keeps failing (or keeps killing its worker) stops at ``MAX_ATTEMPTS``.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    MAX_ATTEMPTS = 3

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="reports")
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="reports")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    reason = models.TextField(blank=True, help_text="Why the last build failed.")
    data = models.JSONField(default=dict, blank=True)
    pdf = models.BinaryField(null=True, blank=True)
    pdf_size = models.PositiveIntegerField(default=0)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle", "subject"]
        constraints = [
            models.UniqueConstraint(fields=["cycle", "subject"], name="report_unique_subject_in_cycle"),
        ]
        indexes = [
            models.Index(fields=["cycle", "status"], name="report_cycle_status"),
            models.Index(fields=["status", "not_before"], name="report_due"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.status})"


class CoachAssignment(models.Model):
    """A coach allowed to read the reports of one subject, or of a whole cycle (``subject`` empty)."""

    coach = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coach_assignments")
    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="coach_assignments")
    subject = models.ForeignKey(
        Subject, on_delete=models.CASCADE, null=True, blank=True, related_name="coach_assignments"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cycle", "coach"]
        constraints = [
            models.UniqueConstraint(
                fields=["coach", "subject"],
                condition=models.Q(subject__isnull=False),
                name="coach_assignment_unique_subject",
            ),
            models.UniqueConstraint(
                fields=["coach", "cycle"],
                condition=models.Q(subject__isnull=True),
                name="coach_assignment_unique_cycle",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coach} coaches {self.subject or self.cycle}"


def _release_expiry() -> datetime:
    return timezone.now() + RELEASE_VALID_FOR


class Release(Job):
    """A report released to its subject: an emailed download link, stored as a hash only.

    The row is written when the coach releases; the email is sent by a background job,
    which makes the link at send time and keeps only its SHA-256 here (an attempt that is
    retried replaces it, so only the link of the email that went out works). ``status``
    follows the email: queued → sending → sent, or back to queued for a retry, or failed
    with ``last_error`` once the retries are spent (the coach can then try again).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="releases")
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    email = models.EmailField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    last_error = models.TextField(blank=True)
    expires_at = models.DateTimeField(default=_release_expiry)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "not_before"], name="release_due")]

    def __str__(self) -> str:
        return f"release of report {self.report_id} to {self.email}"

    def is_active(self) -> bool:
        # A release given up on opens nothing, even if its email did go out after all
        # (the connection dropped after the server took it): the coach may then release
        # again, and two working links of one report would be one too many.
        return self.revoked_at is None and self.expires_at > timezone.now() and self.status != self.Status.FAILED


REPORTS = job_kind_register(
    JobKind(
        name="reports",
        model=Report,
        task="reports.build",
        # A build that keeps failing for a passing reason (the database restarting) or
        # keeps killing its worker stops here, failed with its reason, for a re-run.
        max_attempts=Report.MAX_ATTEMPTS,
        reason_field="reason",
    )
)

RELEASES = job_kind_register(
    JobKind(
        name="releases",
        model=Release,
        task="reports.release_send",
        max_attempts=6,
        reason_field="last_error",
        running=Release.Status.SENDING,
        # A revoked release's email never goes out, whatever state it was left in.
        exclude=models.Q(revoked_at__isnull=False),
    )
)
