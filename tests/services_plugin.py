"""Starts embedded PostgreSQL and Redis for the test run when no URLs are given.

Loaded with ``-p`` (see pyproject.toml) so that it runs before pytest-django imports the
settings, which read ``DATABASE_URL`` and ``REDIS_URL``. Each run gets its own servers in
a temporary directory, so two test runs on one machine never share a database.
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

from config.embedded import EmbeddedServices

_services: EmbeddedServices | None = None
_directory: Path | None = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    global _services, _directory
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
