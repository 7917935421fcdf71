"""The OpenAPI schema tells the truth: schemathesis fuzzes every operation on the live server.

Run as a manager with a token, a bounded number of examples per operation. Any 5xx,
any error under /api/ that is not JSON, any status code, content type or body the
schema does not describe fails the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from surveys.models import Cycle
from tests.factories import CycleFactory, PersonFactory, SubjectFactory, TeamFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 50
# The whole run stops sending requests after this; with the examples above it ends well before.
TIME_BUDGET_SECONDS = 150


@schemathesis.check
def errors_are_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx and 5xx under /api/ has a JSON body, whatever layer answered it."""
    if response.status_code >= 400 and case.path.startswith("/api/"):
        values = [value for name, value in response.headers.items() if name.lower() == "content-type"]
        content_type = str((values[0][0] if isinstance(values[0], list) else values[0]) if values else "")
        if not content_type.startswith("application/json"):
            raise AssertionError(f"{response.status_code} answered as {content_type!r}, not JSON")
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    errors_are_json,
]


@pytest.fixture
def world(manager: Any) -> dict[str, Any]:
    """Alice's team with people, a draft and an open cycle: ids the fuzzer is steered to."""
    team = TeamFactory(manager=manager, name="Platform")
    people = [PersonFactory(team=team) for _ in range(3)]
    draft = CycleFactory(team=team)
    opened = CycleFactory(team=team, status=Cycle.Status.OPEN)
    for person in people:
        SubjectFactory(cycle=draft, person=person)
        SubjectFactory(cycle=opened, person=person)
    return {
        "token": Token.objects.create(user=manager).key,
        "ids": {
            "team_id": [team.pk],
            "person_id": [person.pk for person in people],
            "cycle_id": [draft.pk, opened.pk],
        },
    }


def served_schema() -> dict[str, Any]:
    """The schema exactly as ``/api/schema/`` serves it (checked below), built once at collection."""
    generator = SchemaGenerator()
    return json.loads(OpenApiJsonRenderer().render(generator.get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(served_schema())
started: list[float] = []


@pytest.fixture
def budget() -> Iterator[None]:
    if not started:
        started.append(time.monotonic())
    yield


def test_the_fuzzed_schema_is_the_one_served(client: Any) -> None:
    assert client.get("/api/schema/?format=json").json() == served_schema()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_answers_as_the_schema_says(
    case: Any, world: dict[str, Any], live_server: Any, budget: None
) -> None:
    if time.monotonic() - started[0] > TIME_BUDGET_SECONDS:
        return
    # Half the generated ids are replaced by Alice's own, so operations reach real objects too.
    for name, ids in world["ids"].items():
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = ids[value % len(ids)]
    case.call_and_validate(
        base_url=live_server.url, headers={"Authorization": f"Token {world['token']}"}, checks=CHECKS, timeout=30
    )
