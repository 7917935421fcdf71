"""Every route in the URL resolver has an access rule: outsiders get 404, signed-out visitors nothing.

The routes come from the resolver itself, not from a list kept by hand, so a new route
that forgets its access helper fails here. A route is either public for a stated
reason (``PUBLIC``), a secret-token route (``config.token_routes``), a list of the
caller's own objects (no id in its path), or an object route whose ids are filled in
from Alice's world below — and a route with an id this file does not know fails too.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from config.logging import redact
from config.token_routes import TOKEN_PARAMETER, TOKEN_ROUTES
from feedback.models import Response, SealedAnswer
from reports.models import CoachAssignment, Release, Report
from surveys.models import Cycle, Invitation, OutboundEmail, Person, Team
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory, UserFactory
from tests.reports.helpers import answers_create, stored_report_create

# Route name → why it needs no access rule of its own.
PUBLIC = {
    "healthz": "probes, answered before anything else",
    "login": "signing in",
    "logout": "signing out",
    "api-token": "exchanging a password for a token",
    "schema": "the public API description",
    "api-docs": "the public API description",
    "feedback:survey": "keyed by a random key that means something only in the rater's own session",
    "feedback:decline": "keyed by a random key that means something only in the rater's own session",
}
METHODS = ("get", "post", "patch", "put", "delete")


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += _walk(entry.url_patterns, prefix + str(entry.pattern), entry.namespace or namespace)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace else str(entry.name)
            found.append((name, prefix + str(entry.pattern)))
    return found


ALL_ROUTES = [(name, route) for name, route in _walk(get_resolver().url_patterns) if not name.startswith("admin:")]
TOKEN_ROUTE_NAMES = [name for name, route in ALL_ROUTES if f"<str:{TOKEN_PARAMETER}>" in route]
OBJECT_ROUTES = [
    (name, route) for name, route in ALL_ROUTES if "<" in route and name not in PUBLIC and name not in TOKEN_ROUTE_NAMES
]
OWN_LISTS = [(name, route) for name, route in ALL_ROUTES if "<" not in route and name not in PUBLIC]


def test_the_route_lists_cover_the_whole_resolver() -> None:
    classified = {name for name, _ in OBJECT_ROUTES + OWN_LISTS} | set(PUBLIC) | set(TOKEN_ROUTE_NAMES)
    assert {name for name, _ in ALL_ROUTES} == classified
    assert len(OBJECT_ROUTES) > 40  # the resolver was really walked
    assert set(PUBLIC) <= {name for name, _ in ALL_ROUTES}, "a public route was renamed or removed"


@pytest.mark.parametrize(("name", "route"), [(n, r) for n, r in ALL_ROUTES if n in TOKEN_ROUTE_NAMES])
def test_every_token_route_is_registered_and_redacted(name: str, route: str) -> None:
    prefixes = [token_route.prefix for token_route in TOKEN_ROUTES]
    assert any(route.startswith(f"{prefix}/<str:{TOKEN_PARAMETER}>/") for prefix in prefixes), name
    path = "/" + route.replace(f"<str:{TOKEN_PARAMETER}>", "Secret_Token-0123456789abcdef")
    assert "Secret_Token" not in redact(f"GET {path} 404"), name


@pytest.fixture
def world(manager: Any, coach: Any, other_manager: Any, default_questionnaire: Any) -> dict[str, Any]:
    """Alice manages the cycle, Charlie coaches it; Bob manages another team; Dana coaches elsewhere."""
    cycle = CycleFactory(team__manager=manager, status=Cycle.Status.CLOSED, closed_at=timezone.now())
    subject = SubjectFactory(cycle=cycle, person__email="jonas@example.test")
    answers_create(subject)
    stored_report = stored_report_create(subject)
    assignment = CoachAssignment.objects.create(coach=coach, cycle=cycle, created_by=manager)
    release = Release.objects.create(
        report=stored_report, token_hash="0" * 64, email="jonas@example.test", status=Release.Status.FAILED
    )
    rater = InvitationFactory(subject=stored_report.subject)
    elsewhere = SubjectFactory(cycle=CycleFactory(team__manager=other_manager))
    dana = UserFactory(username="dana")
    CoachAssignment.objects.create(coach=dana, cycle=elsewhere.cycle, subject=elsewhere)
    ids = {
        "team_id": cycle.team_id,
        "person_id": stored_report.subject.person_id,
        "cycle_id": cycle.id,
        "subject_id": stored_report.subject_id,
        "rater_id": rater.id,
        "report_id": stored_report.id,
        "release_id": release.id,
        "assignment_id": assignment.id,
    }
    return {"ids": ids, "insiders": [manager, coach], "outsiders": [other_manager, dana]}


def _url(route: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"route parameter <{name}> has no object in this test's world: give it an access rule"
        return str(ids[name])

    return "/" + re.sub(r"<(?:int:)?(\w+)>", fill, route)


def _snapshot() -> tuple[Any, ...]:
    return (
        Team.objects.values_list("id", "name").order_by("id").count(),
        list(Team.objects.values_list("name", flat=True).order_by("id")),
        Person.objects.count(),
        Invitation.objects.count(),
        OutboundEmail.objects.count(),
        list(Report.objects.values_list("status", flat=True).order_by("id")),
        list(Release.objects.values_list("status", "revoked_at").order_by("id")),
        CoachAssignment.objects.count(),
        Response.objects.count(),
        SealedAnswer.objects.count(),
    )


def _call(client: Client, method: str, url: str) -> Any:
    body = {"name": "Hijacked", "email": "h@example.test", "coach": "dana"}
    if method in ("patch", "put", "delete"):
        return getattr(client, method)(url, body, content_type="application/json")
    return getattr(client, method)(url, body)


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "route"), OBJECT_ROUTES)
def test_outsiders_get_404_on_every_object_route_and_change_nothing(
    client: Client, world: dict[str, Any], name: str, route: str
) -> None:
    url = _url(route, world["ids"])
    before = _snapshot()
    for outsider in world["outsiders"]:
        client.force_login(outsider)
        answers = {method: _call(client, method, url).status_code for method in METHODS}
        # 405 says only which methods the route has, nothing about the object
        assert set(answers.values()) <= {404, 405}, (name, outsider.username, answers)
        assert 404 in answers.values(), (name, outsider.username, answers)
    assert _snapshot() == before, name
    # and the ids are real: somebody with the right does get past the access rule
    reached = []
    for insider in world["insiders"]:
        client.force_login(insider)
        reached += [method for method in METHODS if _call(client, method, url).status_code not in (404, 405)]
        if reached:
            break
    assert reached, f"{name}: neither the cycle's manager nor its coach reaches {url}"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "route"), OBJECT_ROUTES + OWN_LISTS)
def test_signed_out_visitors_get_nothing_on_every_route(
    client: Client, world: dict[str, Any], name: str, route: str
) -> None:
    url = _url(route, world["ids"])
    before = _snapshot()
    for method in ("get", "post"):
        response = _call(client, method, url)
        if response.status_code == 405:
            continue
        if url.startswith("/api/"):
            assert response.status_code == 403, (name, method)
            assert response["Content-Type"] == "application/json"
        else:
            assert response.status_code == 302, (name, method)
            assert response["Location"].startswith("/accounts/login/"), (name, method)
    assert _snapshot() == before, name
