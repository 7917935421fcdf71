"""Celery tasks: take an id, call a service."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

from reports.services import release_send, report_build

RELEASE_EMAIL_MAX_RETRIES = 5


# max_retries is None because the attempt budget lives in the database (Report.attempts),
# where it also survives redeliveries after a worker died mid-build.
@shared_task(bind=True, name="reports.build", max_retries=None)
def report_build_task(self: Task, report_id: int) -> str:
    outcome = report_build(report_id=report_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


def _email_backoff(retries: int) -> float:
    # 30 s, 1 min, 2 min, 4 min, 8 min by default: a mail server that refuses for a while
    # (greylisting answers 451 for some minutes, a restart) gets time to come back.
    base = float(getattr(settings, "REPORTS_EMAIL_RETRY_BACKOFF", 30))
    return base * 2**retries


@shared_task(bind=True, name="reports.release_send", max_retries=RELEASE_EMAIL_MAX_RETRIES)
def release_send_task(self: Task, release_id: int) -> str:
    """Email a released report's download link; retry transient failures with exponential backoff.

    The last allowed attempt tells the service so: its failure is recorded on the release
    (visible to the coach, who can try again) instead of being retried.
    """
    retries = self.request.retries
    outcome = release_send(release_id=release_id, last_try=retries >= RELEASE_EMAIL_MAX_RETRIES)
    if outcome.retry:
        countdown = outcome.retry_in if outcome.retry_in is not None else _email_backoff(retries)
        raise self.retry(countdown=countdown)
    return outcome.status
