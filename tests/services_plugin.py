"""Starts embedded PostgreSQL and Redis for the test run when no URLs are given.

Loaded with ``-p`` (see pyproject.toml) so that it runs before pytest-django imports the
settings, which read ``DATABASE_URL`` and ``REDIS_URL``. Each run gets its own servers in
a temporary directory, so two test runs on one machine never share a database.

A run spread over processes (``make test`` passes pytest-xdist's ``-n``) gets a pair of
servers per worker process: the tests kill, flush and stop them, which must not reach the
tests another worker is running. The controlling process, which runs no test, starts none;
it hands its workers placeholder URLs that each of them replaces with its own servers'.
Servers given by ``DATABASE_URL`` / ``REDIS_URL`` are shared by the workers instead: each
worker's test database is its own (pytest-django names it after the worker), and so are its
Redis databases (the broker's and the cache's numbers moved by two per worker). Each worker
draws the ports of the servers it starts from a share of ``LOCAL_PORTS`` of its own.
"""

from __future__ import annotations

import os

# Before anything imports ``config`` (whose Celery module defaults to the run command's
# settings): pytest-django prefers this variable over the ini file.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"

import atexit
import shutil
import signal
import tempfile
from collections.abc import Generator
from pathlib import Path
from types import FrameType

import pytest

from config.embedded import EmbeddedServices, local_ports
from config.env import redis_database_url

_services: EmbeddedServices | None = None
_directory: Path | None = None

# What the controlling process of a distributed run exports so that the settings load; no
# server answers at these, and a worker that finds them starts its own.
PER_WORKER = {"DATABASE_URL": "postgres://per-worker/none", "REDIS_URL": "redis://per-worker:6379/0"}
# The Redis databases a worker's tests use: the broker's (and results') and the cache's.
REDIS_DATABASES_PER_WORKER = 2


def _worker_number() -> int | None:
    """This process's number as a pytest-xdist worker (``gw3`` → 3), or ``None``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def _ports_of_worker(worker: int) -> str:
    """This worker's share of ``LOCAL_PORTS``, as ``low-high``."""
    low, high = local_ports()
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), worker + 1)
    share = (high - low + 1) // workers
    return f"{low + worker * share}-{low + (worker + 1) * share - 1}"


def _distributing(early_config: pytest.Config) -> bool:
    """Whether this process hands the tests to xdist workers and runs none itself."""
    return bool(getattr(early_config.known_args_namespace, "numprocesses", None)) and _worker_number() is None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    global _services, _directory
    if _distributing(early_config):
        for name, placeholder in PER_WORKER.items():
            os.environ.setdefault(name, placeholder)
        return (yield)
    for name, placeholder in PER_WORKER.items():
        if os.environ.get(name) == placeholder:
            del os.environ[name]
    worker = _worker_number()
    if worker is not None:
        # Each worker's servers (and those of the stacks its tests start) listen on ports of
        # its own: two workers drawing ports at the same moment can never draw the same one.
        os.environ["LOCAL_PORTS"] = _ports_of_worker(worker)
    if worker:
        # A Redis given from outside, shared by the workers (CACHE_URL follows REDIS_URL when unset).
        for name in ("REDIS_URL", "CACHE_URL"):
            if os.environ.get(name):
                os.environ[name] = redis_database_url(os.environ[name], offset=worker * REDIS_DATABASES_PER_WORKER)
    _directory = Path(tempfile.mkdtemp(prefix="b360-test-"))
    _services = EmbeddedServices(_directory, ephemeral=True)
    _services.start()
    # A run that ends before pytest configures itself (a mistyped option) never reaches
    # pytest_unconfigure: the interpreter's exit stops the servers then.
    atexit.register(_services_stop)
    # A run stopped by SIGTERM (a CI time-out, `timeout`) still stops its servers: pytest
    # turns KeyboardInterrupt into an orderly exit that reaches pytest_unconfigure.
    signal.signal(signal.SIGTERM, _interrupt)
    return (yield)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def pytest_unconfigure(config: pytest.Config) -> None:
    _services_stop()


def _services_stop() -> None:
    """Stop the servers and remove their directory; a second call finds nothing to do."""
    global _services, _directory
    if _services is not None:
        _services.stop()
        _services = None
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)
        _directory = None
