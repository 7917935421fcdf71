"""The Celery application: configuration from Django settings (``CELERY_*``), beat schedule in code."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("balance360")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The periodic jobs, by task name so that beat needs none of the apps' code imported.
app.conf.beat_schedule = {
    # Closes review cycles whose deadline has passed (each close is idempotent).
    "surveys-close-due-cycles": {"task": "surveys.cycles_close_due", "schedule": 300.0},
    # The scheduled reminder round, once per cycle, `reminder_days_before` days before the deadline.
    "surveys-send-due-reminders": {"task": "surveys.reminders_send_due", "schedule": 900.0},
    # Emails left `sending` by a worker that died mid-batch go back to the queue once their claim times out.
    "surveys-requeue-stale-emails": {"task": "surveys.emails_requeue_stale", "schedule": 300.0},
}


@app.task(name="config.ping")
def ping() -> str:
    """Round trip through the broker for /healthz and the worker tests."""
    return "pong"
