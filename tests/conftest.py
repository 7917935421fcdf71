"""Shared fixtures: people with roles, a real Celery worker, a real browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from config.celery import app as celery_app
from surveys.models import Questionnaire
from tests.factories import UserFactory
from tests.factories import default_questionnaire as default_questionnaire_load

# The local SMTP server fixture (``smtp_server``), for the email tests and the browser journey.
pytest_plugins = ["tests.smtp_sink"]


@pytest.fixture(scope="session", autouse=True)
def _release_test_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """End stray sessions (live-server and worker threads) so the test database can be dropped."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def manager(db: None) -> Any:
    return UserFactory(username="alice")


@pytest.fixture
def other_manager(db: None) -> Any:
    return UserFactory(username="bob")


@pytest.fixture
def coach(db: None) -> Any:
    """Charlie, one of the users listed as coaches (the Coaches group)."""
    from django.contrib.auth.models import Group

    from reports.selectors import COACHES_GROUP

    charlie = UserFactory(username="charlie")
    charlie.groups.add(Group.objects.get_or_create(name=COACHES_GROUP)[0])
    return charlie


@pytest.fixture
def default_questionnaire(db: None) -> Questionnaire:
    """The default Kotter questionnaire.

    The data migration loads it, but a transactional test empties every table when it
    ends; loading again is a no-op when it is there.
    """
    return default_questionnaire_load()


@pytest.fixture
def api(manager: Any) -> APIClient:
    """The API as Alice, the manager."""
    client = APIClient()
    client.force_authenticate(manager)
    return client


@pytest.fixture
def eager_celery(settings: Any) -> Iterator[None]:
    """Tasks run in the calling thread; a retry is due at once (no back-off) and its
    doorbell runs it straight away.

    Errors are not propagated from ``delay``; call ``.get()`` on the result to re-raise them.
    """
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    # Through pytest-django's settings fixture, which undoes every test's overrides in order.
    settings.JOB_RETRY_BACKOFF_SECONDS = 0
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def doorbells(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float | None]]:
    """The doorbell messages rung for durable jobs, as (task name, countdown), recorded instead of sent."""
    from config.jobs import KINDS, job_task

    rung: list[tuple[str, float | None]] = []
    for kind in KINDS.values():
        task = job_task(kind)

        def record(*args: Any, _name: str = kind.task, countdown: float | None = None, **options: Any) -> None:
            rung.append((_name, countdown))

        monkeypatch.setattr(task, "apply_async", record)
    return rung


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[Any]:
    """A real Celery worker consuming from the test Redis, in a thread of this process.

    The solo pool runs each task in that same thread, which stops with the worker; a
    thread pool would leave a daemon thread behind that can crash the interpreter at exit.

    It shares the test database (the settings pytest-django rewrote), so tests that use
    it see committed data only — hence ``transactional_db``.
    """
    celery_app.control.purge()
    # Worker threads keep their persistent connections otherwise, and the test database
    # could not be dropped at the end of the run.
    task_postrun.connect(_close_thread_connection)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False) as worker:
            yield worker
    finally:
        task_postrun.disconnect(_close_thread_connection)


def _close_thread_connection(**kwargs: Any) -> None:
    connection.close()


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A page in Debian's Chromium driven by Playwright (its own browser download cannot work here).

    One browser per test: Playwright's sync API keeps an event loop in this thread while it
    lives, and Django refuses synchronous database work next to a running loop, so the
    loop must not outlive the browser test that needed it.
    """
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = chromium.new_context()
        context.set_default_timeout(15_000)
        yield context.new_page()
        context.close()
        chromium.close()


@pytest.fixture(autouse=True)
def _throttles_start_empty() -> Iterator[None]:
    """Every test starts with no failed sign-ins or dead links counted (the cache is the throttles' only data)."""
    cache.clear()
    yield


# Screenshots and PDF pages a person should look at after a run: kept in the checkout (not
# in pytest's temporary directories, which the next run deletes), under var/, which git ignores.
# What a person should look at after a run (PDF pages, screenshots): .ci/run keeps this folder.
ARTIFACTS_DIR = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parent.parent / ".ci" / "artifacts"))


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's own folder of artifacts, emptied first so it holds only this run's files."""
    folder = ARTIFACTS_DIR / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    if folder.exists():
        for old in folder.iterdir():
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
