"""The Celery application: configuration (beat schedule included) from Django settings (``CELERY_*``)."""

from __future__ import annotations

import gc
import importlib
import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("balance360")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Doorbells and the sweep keep no result: their outcome is in the job rows, not in Redis.
@app.task(name="config.jobs_sweep", ignore_result=True)
def jobs_sweep() -> dict[str, int]:
    from config.jobs import jobs_sweep as sweep

    return sweep()


@app.task(name="config.link_lockouts_purge", ignore_result=True)
def link_lockouts_purge() -> int:
    from config.throttling import link_lockouts_purge as purge

    return purge()


@app.task(name="config.ping")
def ping() -> str:
    """Round trip through the broker for /healthz and the worker tests."""
    return "pong"


@worker_init.connect
def renderer_libraries_load(**_: Any) -> None:
    """The main process loads the PDF renderer's libraries once, before it starts its pool.

    Finding them (ctypes asks the C compiler, about thirty runs) took most of a pool
    process's start: each process it forks, the first ones and every one that replaces a
    process after ``worker_max_tasks_per_child`` tasks, inherits them loaded (a start went
    from about 0.6 to 0.2 s). Nothing of a report is made here: fonts and stylesheets are
    each process's own (``pool_process_ready``).
    """
    importlib.import_module("weasyprint")


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
