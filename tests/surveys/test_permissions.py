"""Lists show only your own; no cycle on somebody else's team (every route: tests/config/test_access_rules.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from surveys.models import Cycle

pytestmark = pytest.mark.django_db


def test_lists_show_only_your_own(cycle: Cycle, other_manager: Any, client: Client) -> None:
    api = APIClient()
    api.force_authenticate(other_manager)
    assert api.get("/api/teams/").json()["count"] == 0
    assert api.get("/api/cycles/").json()["count"] == 0
    client.force_login(other_manager)
    assert cycle.name not in client.get("/cycles/").content.decode()
    assert cycle.team.name not in client.get("/teams/").content.decode()


def test_cannot_create_a_cycle_on_somebody_elses_team(cycle: Cycle, other_manager: Any) -> None:
    api = APIClient()
    api.force_authenticate(other_manager)
    response = api.post(
        "/api/cycles/",
        {"team": cycle.team_id, "name": "X", "deadline": "2099-01-01T00:00:00Z", "subjects": [1]},
        format="json",
    )
    assert response.status_code == 400 and "team" in response.json()
    assert Cycle.objects.count() == 1
