from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from surveys.models import Cycle, Group, Invitation, OutboundEmail, Team
from tests.surveys.helpers import person

pytestmark = pytest.mark.django_db


def _deadline(days: int = 14) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


def _messages(response: Any, field: str) -> list[str]:
    """The field's error messages, checking they come as DRF's list of strings."""
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    assert isinstance(messages, list) and messages, messages
    assert all(isinstance(message, str) for message in messages), messages
    return messages


def test_team_and_people_round_trip(api: APIClient) -> None:
    team = api.post("/api/teams/", {"name": "Ops"}, format="json")
    assert team.status_code == 201
    team_id = team.json()["id"]
    boss = api.post(f"/api/teams/{team_id}/people/", {"name": "Boss", "email": "BOSS@x.test"}, format="json")
    assert boss.status_code == 201 and boss.json()["email"] == "boss@x.test"
    worker = api.post(
        f"/api/teams/{team_id}/people/",
        {"name": "Worker", "email": "w@x.test", "reports_to": boss.json()["id"]},
        format="json",
    )
    assert worker.json()["reports_to"] == boss.json()["id"]
    listing = api.get(f"/api/teams/{team_id}/people/").json()
    assert [p["name"] for p in listing["results"]] == ["Boss", "Worker"]
    renamed = api.patch(f"/api/people/{worker.json()['id']}/", {"name": "Worker Bee"}, format="json")
    assert renamed.json()["name"] == "Worker Bee" and renamed.json()["reports_to"] == boss.json()["id"]
    assert api.get("/api/teams/").json()["results"][0]["people_count"] == 2
    assert api.patch(f"/api/teams/{team_id}/", {"name": "Operations"}, format="json").json()["name"] == "Operations"
    assert api.delete(f"/api/people/{worker.json()['id']}/").status_code == 204


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Eve"}, "email"),
        ({"name": "Eve", "email": "nope"}, "email"),
        ({"email": "eve@x.test"}, "name"),
        ({"name": "Eve", "email": "eve@x.test", "reports_to": 999999}, "reports_to"),
    ],
)
def test_person_errors_name_the_field(api: APIClient, team: Team, payload: dict[str, Any], field: str) -> None:
    response = api.post(f"/api/teams/{team.pk}/people/", payload, format="json")
    assert _messages(response, field)


def test_duplicate_person_email_is_a_field_error(api: APIClient, team: Team) -> None:
    response = api.post(
        f"/api/teams/{team.pk}/people/", {"name": "Again", "email": person(team, "Ann").email}, format="json"
    )
    assert response.status_code == 400
    assert "already in this team" in response.json()["email"][0]


def test_csv_upload_endpoint(api: APIClient, team: Team) -> None:
    good = SimpleUploadedFile("people.csv", b"name,email,reports_to\nNew One,new1@x.test,\n", content_type="text/csv")
    response = api.post(f"/api/teams/{team.pk}/people/import/", {"file": good}, format="multipart")
    assert response.status_code == 201 and response.json()["created"] == 1
    bad = SimpleUploadedFile("people.csv", b"name,email\n,a@x.test\nB,\n", content_type="text/csv")
    response = api.post(f"/api/teams/{team.pk}/people/import/", {"file": bad}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"file": ["line 2: missing name", "line 3: missing email"]}
    assert response_missing(api, f"/api/teams/{team.pk}/people/import/")


def response_missing(api: APIClient, url: str) -> bool:
    response = api.post(url, {}, format="multipart")
    return response.status_code == 400 and "file" in response.json()


def test_cycle_lifecycle_through_the_api(api: APIClient, team: Team) -> None:
    people = list(team.people.values_list("id", flat=True))
    created = api.post(
        "/api/cycles/",
        {"team": team.pk, "name": "API cycle", "deadline": _deadline(), "subjects": people[:3]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    cycle = created.json()
    assert cycle["status"] == "draft" and len(cycle["subjects"]) == 3 and cycle["anonymity_min"] == 3
    cycle_id = cycle["id"]
    raters = api.get(f"/api/cycles/{cycle_id}/raters/").json()
    assert raters["count"] == Invitation.objects.filter(cycle_id=cycle_id).count()
    assert "status" not in raters["results"][0]
    subject_id = cycle["subjects"][0]["id"]
    added = api.post(
        f"/api/cycles/{cycle_id}/raters/",
        {"subject": subject_id, "email": "Outside@Partner.test", "name": "Partner", "group": "outside"},
        format="json",
    )
    assert added.status_code == 201 and added.json()["email"] == "outside@partner.test"
    assert api.delete(f"/api/cycles/{cycle_id}/raters/{added.json()['id']}/").status_code == 204
    patched = api.patch(f"/api/cycles/{cycle_id}/", {"name": "Renamed", "anonymity_min": 4}, format="json")
    assert patched.status_code == 200 and patched.json()["anonymity_min"] == 4
    # launch, twice
    first = api.post(f"/api/cycles/{cycle_id}/launch/")
    second = api.post(f"/api/cycles/{cycle_id}/launch/")
    assert first.json() == {"changed": True, "status": "open"}
    assert second.json() == {"changed": False, "status": "open"}
    emails = OutboundEmail.objects.filter(cycle_id=cycle_id).count()
    assert emails == len(set(Invitation.objects.filter(cycle_id=cycle_id).values_list("rater_email", flat=True)))
    # progress: self and manager answered or not, the anonymous raters pooled
    answered = Invitation.objects.filter(cycle_id=cycle_id, subject_id=subject_id, group=Group.PEER).first()
    assert answered is not None
    Invitation.objects.filter(pk=answered.pk).update(status=Invitation.Status.COMPLETED)
    progress = api.get(f"/api/cycles/{cycle_id}/progress/").json()
    assert progress["anonymity_min"] == 4
    subject = next(s for s in progress["results"] if s["subject"] == subject_id)
    assert set(subject) == {"subject", "name", "self", "manager", "anonymous"}
    assert subject["self"] == {"invited": True, "answered": False}
    invited = Invitation.objects.filter(subject_id=subject_id, group__in=["peer", "direct_report", "outside"]).count()
    assert subject["anonymous"] == {"invited": invited, "answered": 1 if invited >= 4 else None, "enough": False}
    assert progress["emails"]["invitation"]["queued"] == emails
    # remind, twice within the hour
    remind = api.post(f"/api/cycles/{cycle_id}/remind/")
    assert remind.status_code == 201 and set(remind.json()) == {"id", "kind", "created_at"}
    again = api.post(f"/api/cycles/{cycle_id}/remind/")
    assert again.status_code == 400 and "reminder" in again.json()
    # close, twice
    assert api.post(f"/api/cycles/{cycle_id}/close/").json() == {"changed": True, "status": "closed"}
    assert api.post(f"/api/cycles/{cycle_id}/close/").json() == {"changed": False, "status": "closed"}
    assert api.get("/api/cycles/").json()["results"][0]["status"] == "closed"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": ""}, "name"),
        ({"deadline": "yesterday"}, "deadline"),
        ({"deadline": "past"}, "deadline"),
        ({"anonymity_min": 1}, "anonymity_min"),
        ({"anonymity_min": 4, "comment_min": 3}, "comment_min"),
        ({"subjects": []}, "subjects"),
        ({"subjects": [999999]}, "subjects"),
        ({"nomination_min": 5, "nomination_max": 2}, "nomination_max"),
        ({"team": 999999}, "team"),
        ({"anonymity_min": 99999}, "anonymity_min"),
        ({"comment_min": 99999}, "comment_min"),
        ({"nomination_min": 99999}, "nomination_min"),
        ({"nomination_max": 99999}, "nomination_max"),
        ({"reminder_days_before": 99999}, "reminder_days_before"),
    ],
)
def test_cycle_create_errors_name_the_field(api: APIClient, team: Team, payload: dict[str, Any], field: str) -> None:
    data: dict[str, Any] = {
        "team": team.pk,
        "name": "Cycle",
        "deadline": _deadline(),
        "subjects": list(team.people.values_list("id", flat=True)),
    }
    data.update(payload)
    if data["deadline"] == "past":
        data["deadline"] = _deadline(-1)
    response = api.post("/api/cycles/", data, format="json")
    assert _messages(response, field)
    assert not Cycle.objects.exists()


def test_cycle_create_refuses_numbers_too_large_naming_each_field(api: APIClient, team: Team) -> None:
    data = {
        "team": team.pk,
        "name": "Cycle",
        "deadline": _deadline(),
        "subjects": list(team.people.values_list("id", flat=True)),
        **{field: 99999 for field in ("anonymity_min", "comment_min", "nomination_min", "nomination_max")},
    }
    response = api.post("/api/cycles/", data, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "anonymity_min": ["Ensure this value is less than or equal to 100."],
        "comment_min": ["Ensure this value is less than or equal to 100."],
        "nomination_min": ["Ensure this value is less than or equal to 50."],
        "nomination_max": ["Ensure this value is less than or equal to 50."],
    }
    assert not Cycle.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"anonymity_min": 70000}, "anonymity_min"),
        ({"comment_min": 101}, "comment_min"),
        ({"nomination_max": 51}, "nomination_max"),
        ({"reminder_days_before": 61}, "reminder_days_before"),
    ],
)
def test_cycle_patch_refuses_numbers_too_large(
    api: APIClient, cycle: Cycle, payload: dict[str, Any], field: str
) -> None:
    response = api.patch(f"/api/cycles/{cycle.pk}/", payload, format="json")
    assert "less than or equal to" in _messages(response, field)[0]
    stored = Cycle.objects.get(pk=cycle.pk)
    assert (stored.anonymity_min, stored.comment_min, stored.nomination_max) == (3, None, 8)


def test_rater_errors_name_the_field(api: APIClient, cycle: Cycle) -> None:
    subject = cycle.subjects.first()
    assert subject is not None
    bad_subject = api.post(f"/api/cycles/{cycle.pk}/raters/", {"subject": 999999, "email": "a@x.test"}, format="json")
    assert _messages(bad_subject, "subject") == ["No such subject in this cycle."]
    bad_group = api.post(
        f"/api/cycles/{cycle.pk}/raters/", {"subject": subject.pk, "email": "a@x.test", "group": "boss"}, format="json"
    )
    assert _messages(bad_group, "group")


def test_service_and_http_layer_errors_share_one_shape(api: APIClient, cycle: Cycle, team: Team) -> None:
    # given: errors raised by the HTTP layer itself, not by a service
    no_team = api.post(
        "/api/cycles/", {"team": 999999, "name": "C", "deadline": _deadline(), "subjects": [1]}, format="json"
    )
    stranger = api.patch(f"/api/cycles/{cycle.pk}/", {"subjects": [999999]}, format="json")
    no_boss = api.patch(f"/api/people/{person(team, 'Ann').pk}/", {"reports_to": 999999}, format="json")
    # then: a list of messages per field, exactly like DRF's own validation
    assert _messages(no_team, "team") == ["No such team."]
    assert _messages(stranger, "subjects") == ["Every subject must be a member of the cycle's team."]
    assert _messages(no_boss, "reports_to") == ["No such person in this team."]


def test_launched_cycle_refuses_frozen_changes(api: APIClient, open_cycle: Cycle, team: Team) -> None:
    response = api.patch(f"/api/cycles/{open_cycle.pk}/", {"subjects": [person(team, "Ann").pk]}, format="json")
    assert response.status_code == 400 and "subjects" in response.json()
    assert api.delete(f"/api/cycles/{open_cycle.pk}/").status_code == 400


def test_the_comment_minimum_cannot_be_lowered_through_the_api_once_launched(
    api: APIClient, team: Team, cycle_build: Any
) -> None:
    cycle = cycle_build(team, launch=True, comment_min=5)
    for payload in ({"comment_min": 4}, {"comment_min": None}):
        response = api.patch(f"/api/cycles/{cycle.pk}/", payload, format="json")
        assert response.status_code == 400
        assert set(response.json()) == {"comment_min"}
        assert "once the cycle is launched" in response.json()["comment_min"][0]
    assert Cycle.objects.get(pk=cycle.pk).comment_min == 5
    assert api.patch(f"/api/cycles/{cycle.pk}/", {"comment_min": 6}, format="json").json()["comment_min"] == 6


def test_draft_cannot_be_closed_but_can_be_deleted(api: APIClient, cycle: Cycle) -> None:
    response = api.post(f"/api/cycles/{cycle.pk}/close/")
    assert _messages(response, "status") == ["Launch the cycle before closing it (or delete the draft)."]
    assert api.delete(f"/api/cycles/{cycle.pk}/").status_code == 204
    assert not Cycle.objects.exists()


def test_the_api_is_in_the_openapi_schema(client: Any) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in [
        "/api/teams/",
        "/api/teams/{team_id}/people/",
        "/api/teams/{team_id}/people/import/",
        "/api/people/{person_id}/",
        "/api/cycles/",
        "/api/cycles/{cycle_id}/",
        "/api/cycles/{cycle_id}/raters/",
        "/api/cycles/{cycle_id}/raters/{rater_id}/",
        "/api/cycles/{cycle_id}/launch/",
        "/api/cycles/{cycle_id}/progress/",
        "/api/cycles/{cycle_id}/remind/",
        "/api/cycles/{cycle_id}/close/",
        "/api/cycles/{cycle_id}/nominations/",
    ]:
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/teams/{team_id}/people/import/"]["post"]["requestBody"]["content"]
