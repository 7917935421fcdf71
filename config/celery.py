"""The Celery application: configuration from Django settings (``CELERY_*``), beat schedule in code."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("balance360")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The periodic jobs, by task name so that beat needs none of the apps' code imported.
app.conf.beat_schedule = {}


@app.task(name="config.ping")
def ping() -> str:
    """Round trip through the broker for /healthz and the worker tests."""
    return "pong"
