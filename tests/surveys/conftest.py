"""Fixtures for teams, cycles and the email path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from config.celery import app as celery_app
from surveys import services
from surveys.models import Cycle, OutboundEmail, Person, Team
from tests.factories import PersonFactory, TeamFactory

# name, reports to (by name): one lead, two middle managers, four individual contributors.
ORG = [
    ("Lead", None),
    ("Mid One", "Lead"),
    ("Mid Two", "Lead"),
    ("Ann", "Mid One"),
    ("Ben", "Mid One"),
    ("Cat", "Mid Two"),
    ("Dan", "Mid Two"),
]


def team_build(manager: Any, size: int | None = None, name: str = "Platform") -> Team:
    """A team with reporting lines: ``ORG`` by default, or ``size`` people under one lead."""
    team = TeamFactory(manager=manager, name=name)
    people: dict[str, Person] = {}
    if size is None:
        for person_name, boss in ORG:
            slug = person_name.lower().replace(" ", ".")
            people[person_name] = PersonFactory(
                team=team, name=person_name, email=f"{slug}.{team.pk}@example.test", reports_to=people.get(boss or "")
            )
    else:
        lead = PersonFactory(team=team, name="Lead", email=f"lead.{team.pk}@example.test")
        for number in range(1, size):
            PersonFactory(
                team=team, name=f"Member {number:03}", email=f"m{number}.{team.pk}@example.test", reports_to=lead
            )
    return team


def person(team: Team, name: str) -> Person:
    return team.people.get(name=name)


@pytest.fixture(autouse=True)
def default_questionnaire_present(db: None) -> None:
    """The migration loads the default questionnaire, but a transactional test flushes every
    table when it ends; load it again (a no-op when present) for the tests that follow."""
    services.questionnaire_load_file(path=services.DEFAULT_QUESTIONNAIRE_FILE)


@pytest.fixture
def team(manager: Any) -> Team:
    return team_build(manager)


@pytest.fixture
def cycle_build(manager: Any) -> Callable[..., Cycle]:
    def build(team: Team, launch: bool = False, **options: Any) -> Cycle:
        options.setdefault("name", "Spring review")
        options.setdefault("deadline", timezone.now() + timedelta(days=14))
        options.setdefault("people", list(team.people.all()))
        cycle = services.cycle_create(team=team, by=team.manager, **options)
        if launch:
            services.cycle_launch(cycle=cycle, by=team.manager)
        return cycle

    return build


@pytest.fixture
def cycle(team: Team, cycle_build: Callable[..., Cycle]) -> Cycle:
    return cycle_build(team)


@pytest.fixture
def open_cycle(team: Team, cycle_build: Callable[..., Cycle]) -> Cycle:
    return cycle_build(team, launch=True)


@pytest.fixture
def api(manager: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(manager)
    return client


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run in the calling thread (retries immediately, without their countdown).

    Errors are not propagated from ``delay`` (Celery would then raise its own ``Retry``
    instead of running the retry); call ``.get()`` on the result to re-raise them.
    """
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


def send_queued() -> list[int]:
    """Send every queued email now, as the task would; returns the ids left to retry."""
    ids = list(OutboundEmail.objects.filter(status=OutboundEmail.Status.QUEUED).values_list("id", flat=True))
    return services.outbound_emails_send(email_ids=ids)


def outbox_for(address: str) -> list[Any]:
    return [message for message in mail.outbox if message.to == [address]]
