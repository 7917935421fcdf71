"""Odd and hostile input on the manager's pages and API: a 400 naming the field, never a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from config import links
from surveys import services
from surveys.models import Cycle, Invitation, Nomination, Person, Team
from tests.surveys.helpers import person

pytestmark = pytest.mark.django_db

# 255 characters: one more than the email columns hold, and still a valid address to Django.
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 60] * 3) + ".example"
assert len(LONG_EMAIL) == 255


def nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [1000, 50_000])
def test_deeply_nested_json_on_staff_endpoints_is_a_400(api: APIClient, team: Team, cycle: Cycle, depth: int) -> None:
    for method, path in [
        ("post", "/api/teams/"),
        ("patch", f"/api/teams/{team.pk}/"),
        ("post", f"/api/teams/{team.pk}/people/"),
        ("patch", f"/api/cycles/{cycle.pk}/"),
        ("post", "/api/cycles/"),
        ("post", f"/api/cycles/{cycle.pk}/raters/"),
        ("post", f"/api/reports/cycles/{cycle.pk}/coaches/"),
    ]:
        response = getattr(api, method)(path, nested(depth), content_type="application/json")
        assert response.status_code == 400, path
        assert "nested more than 20 levels" in response.json()["detail"], path


def test_a_lone_surrogate_in_a_name_is_a_400_naming_it(api: APIClient, team: Team) -> None:
    body = '{"name": "Ann \\ud800", "email": "ann.b@example.test"}'
    response = api.post(f"/api/teams/{team.pk}/people/", body, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()) == ["name"]
    assert not Person.objects.filter(email="ann.b@example.test").exists()


def test_a_surrogate_inside_a_list_names_its_position(api: APIClient, cycle: Cycle) -> None:
    body = '{"subjects": [1, "\\ud800"]}'
    response = api.patch(f"/api/cycles/{cycle.pk}/", body, content_type="application/json")
    assert response.status_code == 400
    assert list(response.json()["subjects"]) == ["1"]


def test_too_long_emails_are_400s_on_person_create_and_update(api: APIClient, team: Team) -> None:
    created = api.post(f"/api/teams/{team.pk}/people/", {"name": "Eve", "email": LONG_EMAIL}, format="json")
    assert created.status_code == 400
    assert "254" in created.json()["email"][0]
    ann = person(team, "Ann")
    updated = api.patch(f"/api/people/{ann.pk}/", {"email": LONG_EMAIL}, format="json")
    assert updated.status_code == 400
    assert list(updated.json()) == ["email"]
    ann.refresh_from_db()
    assert ann.email != LONG_EMAIL


def test_a_too_long_rater_email_is_a_400(api: APIClient, cycle: Cycle) -> None:
    subject = cycle.subjects.first()
    assert subject is not None
    before = Invitation.objects.count()
    response = api.post(
        f"/api/cycles/{cycle.pk}/raters/",
        {"subject": subject.pk, "email": LONG_EMAIL, "group": "outside"},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()) == ["email"]
    assert Invitation.objects.count() == before


def test_services_refuse_too_long_values_before_the_database(team: Team, cycle: Cycle) -> None:
    with pytest.raises(ValidationError) as created:
        services.person_create(team=team, name="Eve", email=LONG_EMAIL)
    assert "at most 254 characters" in created.value.message_dict["email"][0]
    with pytest.raises(ValidationError) as named:
        services.person_create(team=team, name="E" * 201, email="eve@example.test")
    assert "at most 200 characters" in named.value.message_dict["name"][0]
    subject = cycle.subjects.select_related("person").first()
    assert subject is not None
    with pytest.raises(ValidationError) as rater:
        services.rater_add(cycle=cycle, subject=subject, email=LONG_EMAIL, group="outside")
    assert list(rater.value.message_dict) == ["email"]


def test_a_csv_with_a_too_long_email_or_name_lists_the_lines(api: APIClient, team: Team) -> None:
    csv = f"name,email\nEve,{LONG_EMAIL}\n{'N' * 201},n@example.test\nTab\x0bby,t@example.test\n".encode()
    response = api.post(
        f"/api/teams/{team.pk}/people/import/",
        {"file": SimpleUploadedFile("people.csv", csv)},
        format="multipart",
    )
    assert response.status_code == 400
    lines = response.json()["file"]
    assert lines[0] == "line 2: email: An email address has at most 254 characters (this has 255)."
    assert lines[1] == "line 3: name: A name has at most 200 characters (this has 201)."
    assert lines[2].startswith("line 4: name: Contains an invisible control character (U+000B")
    assert not Person.objects.filter(email="n@example.test").exists()


def test_the_person_form_refuses_a_too_long_email_keeping_it(signed_in: Client, team: Team) -> None:
    response = signed_in.post(f"/teams/{team.pk}/", {"name": "Eve", "email": LONG_EMAIL})
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most 254 characters" in html
    assert f'value="{LONG_EMAIL}"' in html


def test_the_rater_form_refuses_a_too_long_email(signed_in: Client, cycle: Cycle) -> None:
    subject = cycle.subjects.first()
    assert subject is not None
    before = Invitation.objects.count()
    response = signed_in.post(
        f"/cycles/{cycle.pk}/raters/", {"subject": subject.pk, "email": LONG_EMAIL, "group": "outside"}
    )
    assert response.status_code == 400
    assert "at most 254 characters" in response.content.decode()
    assert Invitation.objects.count() == before


def test_a_control_character_in_a_form_is_refused_naming_the_field(signed_in: Client) -> None:
    response = signed_in.post("/teams/", {"name": "Ops\x1b[31m"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "invisible control character (U+001B, character 4)" in html
    assert not Team.objects.filter(name__startswith="Ops").exists()


def test_a_nomination_with_a_too_long_email_is_refused(
    client: Client, team: Team, cycle_build: Callable[..., Cycle]
) -> None:
    cycle = cycle_build(team, nomination_mode=Cycle.NominationMode.SUBJECTS, nomination_min=0)
    services.cycle_nominations_open(cycle=cycle, by=team.manager)
    nomination = Nomination.objects.select_related("subject").first()
    assert nomination is not None
    token = links.token_new()
    Nomination.objects.filter(pk=nomination.pk).update(token_hash=links.token_hash(token))
    response = client.post(f"/n/{token}/", {"others": f"Kim Lee, {LONG_EMAIL}"})
    assert response.status_code == 400
    assert "Not a valid email address" in response.content.decode()
    assert not Invitation.objects.filter(rater_email=LONG_EMAIL).exists()


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/api/teams/", {"name": "R\x01D"}),
        ("/api/cycles/", {"name": "Q\x07"}),
    ],
)
def test_the_staff_api_takes_json_only_so_no_form_body_escapes_the_text_rules(
    api: APIClient, url: str, data: dict[str, str]
) -> None:
    form = api.post(url, data)  # multipart, as a browser form would send
    assert form.status_code == 415
    assert "detail" in form.json()


def test_names_with_control_characters_are_refused_by_the_services_too(manager: Any) -> None:
    with pytest.raises(ValidationError) as team_error:
        services.team_create(manager=manager, name="R\x01D")
    assert "control character" in team_error.value.message_dict["name"][0]
