"""The Celery application: configuration (beat schedule included) from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("balance360")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Doorbells and the sweep keep no result: their outcome is in the job rows, not in Redis.
@app.task(name="config.jobs_sweep", ignore_result=True)
def jobs_sweep() -> dict[str, int]:
    from config.jobs import jobs_sweep as sweep

    return sweep()


@app.task(name="config.ping")
def ping() -> str:
    """Round trip through the broker for /healthz and the worker tests."""
    return "pong"
