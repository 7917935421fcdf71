"""Fixtures for teams, cycles and the email path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from surveys import services
from surveys.models import Cycle, Questionnaire, Team
from tests.surveys.helpers import team_build


@pytest.fixture(autouse=True)
def _questionnaire_for_every_test(default_questionnaire: Questionnaire) -> None:
    """Every test here may create a cycle, which takes the default questionnaire."""


@pytest.fixture
def signed_in(client: Client, manager: Any) -> Client:
    """The pages as Alice, the manager."""
    client.force_login(manager)
    return client


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
