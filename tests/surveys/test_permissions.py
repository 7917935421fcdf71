"""Every route: another manager and a coach get 404, an anonymous visitor is sent to log in (403 for the API)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from surveys.models import Cycle, Invitation, OutboundEmail, Team

pytestmark = pytest.mark.django_db

# (method, url template): {team}, {person}, {cycle}, {rater} are filled from alice's objects.
PAGES = [
    ("get", "/teams/{team}/"),
    ("post", "/teams/{team}/"),
    ("post", "/teams/{team}/import/"),
    ("get", "/teams/{team}/cycles/new/"),
    ("post", "/teams/{team}/cycles/new/"),
    ("get", "/people/{person}/edit/"),
    ("post", "/people/{person}/edit/"),
    ("post", "/people/{person}/delete/"),
    ("get", "/cycles/{cycle}/"),
    ("get", "/cycles/{cycle}/edit/"),
    ("post", "/cycles/{cycle}/edit/"),
    ("post", "/cycles/{cycle}/delete/"),
    ("get", "/cycles/{cycle}/raters/"),
    ("post", "/cycles/{cycle}/raters/"),
    ("post", "/cycles/{cycle}/raters/{rater}/remove/"),
    ("post", "/cycles/{cycle}/launch/"),
    ("post", "/cycles/{cycle}/remind/"),
    ("post", "/cycles/{cycle}/close/"),
    ("post", "/cycles/{cycle}/emails/retry/"),
    ("post", "/cycles/{cycle}/nominations/open/"),
]
LISTS = [("get", "/teams/"), ("post", "/teams/"), ("get", "/cycles/")]
APIS = [
    ("get", "/api/teams/{team}/"),
    ("patch", "/api/teams/{team}/"),
    ("get", "/api/teams/{team}/people/"),
    ("post", "/api/teams/{team}/people/"),
    ("post", "/api/teams/{team}/people/import/"),
    ("get", "/api/people/{person}/"),
    ("patch", "/api/people/{person}/"),
    ("delete", "/api/people/{person}/"),
    ("get", "/api/cycles/{cycle}/"),
    ("patch", "/api/cycles/{cycle}/"),
    ("delete", "/api/cycles/{cycle}/"),
    ("get", "/api/cycles/{cycle}/raters/"),
    ("post", "/api/cycles/{cycle}/raters/"),
    ("delete", "/api/cycles/{cycle}/raters/{rater}/"),
    ("post", "/api/cycles/{cycle}/launch/"),
    ("get", "/api/cycles/{cycle}/progress/"),
    ("post", "/api/cycles/{cycle}/remind/"),
    ("post", "/api/cycles/{cycle}/close/"),
    ("get", "/api/cycles/{cycle}/nominations/"),
    ("post", "/api/cycles/{cycle}/nominations/"),
]
API_LISTS = [("get", "/api/teams/"), ("post", "/api/teams/"), ("get", "/api/cycles/"), ("post", "/api/cycles/")]


def _url(template: str, cycle: Cycle) -> str:
    rater = cycle.invitations.first()
    assert rater is not None
    person = cycle.team.people.first()
    assert person is not None
    return template.format(team=cycle.team_id, person=person.pk, cycle=cycle.pk, rater=rater.pk)


def _unchanged(cycle: Cycle, team: Team, snapshot: tuple[Any, ...]) -> bool:
    return _snapshot(cycle, team) == snapshot


def _snapshot(cycle: Cycle, team: Team) -> tuple[Any, ...]:
    cycle.refresh_from_db()
    team.refresh_from_db()
    return (
        cycle.status,
        cycle.name,
        team.name,
        team.people.count(),
        Invitation.objects.count(),
        OutboundEmail.objects.count(),
    )


@pytest.mark.parametrize("intruder", ["other_manager", "coach"])
@pytest.mark.parametrize(("method", "template"), PAGES)
def test_outsider_gets_404_on_every_page(
    request: Any, intruder: str, method: str, template: str, cycle: Cycle, team: Team, client: Client
) -> None:
    client.force_login(request.getfixturevalue(intruder))
    before = _snapshot(cycle, team)
    response = getattr(client, method)(_url(template, cycle), {"name": "Hijacked", "email": "h@x.test"})
    assert response.status_code == 404
    assert _unchanged(cycle, team, before)


@pytest.mark.parametrize(("method", "template"), PAGES + LISTS)
def test_anonymous_visitor_is_sent_to_log_in(
    method: str, template: str, cycle: Cycle, team: Team, client: Client
) -> None:
    before = _snapshot(cycle, team)
    response = getattr(client, method)(_url(template, cycle))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert _unchanged(cycle, team, before)


@pytest.mark.parametrize("intruder", ["other_manager", "coach"])
@pytest.mark.parametrize(("method", "template"), APIS)
def test_outsider_gets_404_on_every_api(
    request: Any, intruder: str, method: str, template: str, cycle: Cycle, team: Team
) -> None:
    api = APIClient()
    api.force_authenticate(request.getfixturevalue(intruder))
    before = _snapshot(cycle, team)
    response = getattr(api, method)(_url(template, cycle), {"name": "Hijacked"}, format="json")
    assert response.status_code == 404
    assert _unchanged(cycle, team, before)


@pytest.mark.parametrize(("method", "template"), APIS + API_LISTS)
def test_anonymous_api_call_is_forbidden(method: str, template: str, cycle: Cycle, team: Team) -> None:
    before = _snapshot(cycle, team)
    response = getattr(APIClient(), method)(_url(template, cycle), {"name": "Hijacked"}, format="json")
    assert response.status_code == 403
    assert _unchanged(cycle, team, before)


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


def test_the_owner_reaches_every_read_route(cycle: Cycle, manager: Any, client: Client) -> None:
    client.force_login(manager)
    for method, template in PAGES + LISTS:
        if method == "get":
            assert client.get(_url(template, cycle)).status_code == 200, template
    api = APIClient()
    api.force_authenticate(manager)
    for method, template in APIS + API_LISTS:
        if method == "get":
            assert api.get(_url(template, cycle)).status_code == 200, template
