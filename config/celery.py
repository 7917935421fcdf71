"""The Celery application: configuration (beat schedule included) from Django settings (``CELERY_*``)."""

from __future__ import annotations

import gc
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

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


@worker_process_init.connect
def pool_process_ready(**_: Any) -> None:
    """Each pool process loads the PDF renderer once, then freezes what it holds.

    Everything alive at this point (Django, the renderer, its fonts and parsed stylesheets)
    lives as long as the process; frozen, the garbage collector's full passes stop walking
    it again while a report builds — about a tenth of a PDF's processor time.
    """
    from reports.rendering import renderer_warm

    renderer_warm()
    gc.collect()
    gc.freeze()
