"""Celery tasks: take an id, call a service."""

from __future__ import annotations

from celery import shared_task
from celery.app.task import Task

from reports.services import report_build


# max_retries is None because the attempt budget lives in the database (Report.attempts),
# where it also survives redeliveries after a worker died mid-build.
@shared_task(bind=True, name="reports.build", max_retries=None)
def report_build_task(self: Task, report_id: int) -> str:
    outcome = report_build(report_id=report_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status
