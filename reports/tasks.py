"""Celery tasks: doorbells for the durable report and release jobs (their state is in PostgreSQL)."""

from __future__ import annotations

from celery import shared_task

from reports.services import releases_send_due, reports_build_due


@shared_task(name="reports.build", ignore_result=True)
def report_build_task(report_id: int | None = None) -> int:
    """Build due reports (only ``report_id`` if given); returns how many were claimed."""
    return reports_build_due(report_ids=None if report_id is None else [report_id])


@shared_task(name="reports.release_send", ignore_result=True)
def release_send_task(release_id: int | None = None) -> int:
    """Send due release emails (only ``release_id`` if given); returns how many were claimed."""
    return releases_send_due(release_ids=None if release_id is None else [release_id])
