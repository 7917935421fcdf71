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

``celery_worker_start`` starts a real Celery worker (prefork, the production settings) on
the same servers, as ``docker-compose.yml`` and the run command do.

The servers run with the run command's durable settings (PostgreSQL with fsync,
synchronous commit and full-page writes on; Redis appending every write), so a figure is
what production pays; their directory is removed at exit. ``DATABASE_URL`` / ``REDIS_URL``
are honoured when set, as everywhere else.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from config.embedded import EmbeddedServices, die_with_parent
from config.launcher import DEATH_SIGNALS


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
    durability_check()
    if quiet:
        import logging

        logging.getLogger().setLevel(logging.WARNING)
    return services


# Each setting and the values that write as durably as production on one server.
DURABLE_SETTINGS = {
    "fsync": {"on"},
    "synchronous_commit": {"on", "local", "remote_write", "remote_apply"},
    "full_page_writes": {"on"},
}


def durability_check() -> None:
    """Say so when the database measured does not write as production does.

    The embedded server runs with fsync, synchronous commit and full-page writes on; a
    server given by ``DATABASE_URL`` is measured as it is, and a figure taken with any of
    them off says less than its name.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for name in DURABLE_SETTINGS:
            cursor.execute(f"SHOW {name}")
            found[name] = cursor.fetchone()[0]
    off = [name for name, value in found.items() if value not in DURABLE_SETTINGS[name]]
    if off:
        print(
            f"WARNING: PostgreSQL runs with {', '.join(f'{name}={found[name]}' for name in off)}: "
            "what follows measures less than production pays.",
            file=sys.stderr,
        )


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed:`` — ``elapsed()`` is the seconds spent inside the block."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


# The worker processes of docker-compose.yml and the run command.
WORKER_CONCURRENCY = 2


def production_worker_env(**extra: str) -> dict[str, str]:
    """The environment of a process on the production settings, against this benchmark's
    servers: secrets of its own (production refuses the published ones), logs at WARNING."""
    var_dir = Path(tempfile.mkdtemp(prefix="b360-bench-var-"))
    atexit.register(shutil.rmtree, var_dir, ignore_errors=True)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RESPONSE_SEAL_KEY": secrets.token_urlsafe(32),
        "VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def celery_worker_start(
    *, concurrency: int = WORKER_CONCURRENCY, env: Mapping[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``celery -A config worker`` (prefork) in a session of its own; ``env`` defaults to
    ``production_worker_env()``. Its output goes to ``log`` (or nowhere)."""
    output = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the worker holds it
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=dict(env) if env is not None else production_worker_env(),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # A benchmark killed outright takes its worker with it, as the run command does.
        preexec_fn=die_with_parent(DEATH_SIGNALS["worker"]),
    )


def celery_worker_wait_ready(worker: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the worker answers a ping through the broker (Django set up first)."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the Celery worker exited with {worker.returncode}")
        if app.control.ping(timeout=1):
            return
    raise RuntimeError(f"the Celery worker did not answer within {timeout:.0f} s")


def process_stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM to the process a benchmark started (Celery's warm shutdown, gunicorn's
    graceful stop), then SIGKILL to its whole session after ``timeout`` seconds.

    Only the leader is told: it stops its own children. Signalled too, a pool process still
    loading the PDF renderer dies in the middle of a ``gcc`` run that ctypes starts to find
    the libraries, and leaves that run's files in the temporary directory.
    """
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def celery_worker_stop(worker: subprocess.Popen[bytes]) -> None:
    """A warm shutdown (its running tasks finish), then SIGKILL after a minute."""
    process_stop(worker, timeout=60)
