"""Shared set-up for the benchmarks in ``bench/``: a throw-away PostgreSQL and Redis, Django ready.

Usage from a benchmark script run as ``.venv/bin/python bench/bench_<name>.py``::

    from bench.common import bench_django_setup, timed

    services = bench_django_setup()   # embedded servers in a temp dir, settings, migrate
    try:
        with timed() as elapsed:
            ...
        print(f"took {elapsed():.2f} s")
    finally:
        services.stop()

The servers run with the run command's durable settings (PostgreSQL with fsync,
synchronous commit and full-page writes on; Redis appending every write), so a figure is
what production pays; their directory is removed at exit. ``DATABASE_URL`` / ``REDIS_URL``
are honoured when set, as everywhere else.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from config.embedded import EmbeddedServices


def bench_django_setup(*, quiet: bool = True) -> EmbeddedServices:
    """Start embedded PostgreSQL and Redis in a temporary directory, set up Django, migrate."""
    directory = Path(tempfile.mkdtemp(prefix="b360-bench-"))
    # Not ephemeral: a benchmark of a database that skips fsync measures less than its name says.
    services = EmbeddedServices(directory, ephemeral=False)
    services.start()

    def cleanup() -> None:
        services.stop()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(cleanup)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if quiet:
        import logging

        logging.getLogger().setLevel(logging.WARNING)
    return services


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed:`` — ``elapsed()`` is the seconds spent inside the block."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())
