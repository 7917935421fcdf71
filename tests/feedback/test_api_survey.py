"""The public survey API: read, submit, decline, keyed by the link token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from feedback import services
from feedback.models import SealedAnswer
from surveys.models import Invitation
from tests.feedback.helpers import full_answers, item_codes, opened_answers, opened_declines

NOT_OPEN = {"detail": "This survey link is not open. If you already answered, thank you."}


def post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, data, content_type="application/json")


def test_read_gives_whom_role_promise_deadline_and_questionnaire(
    client: Client, invitation: Invitation, token: str
) -> None:
    response = client.get(f"/api/survey/{token}/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.json()
    assert body["subject_name"] == "Jonas Berg"
    assert body["group"] == "peer"
    assert body["role"] == "You are rating Jonas Berg as a peer"
    assert body["anonymity"]["identified"] is False
    assert body["anonymity"]["minimum_group_size"] == 4
    assert "answers from peers count only when at least 4 of them answered" in body["anonymity"]["statement"]
    assert body["deadline"].startswith(str(invitation.cycle.deadline.year))
    dimensions = body["questionnaire"]["dimensions"]
    assert [d["side"] for d in dimensions] == ["management"] * 3 + ["leadership"] * 3
    assert [item["code"] for d in dimensions for item in d["items"]] == item_codes(invitation.cycle)
    assert body["scale"][0] == {"value": 1, "label": "Strongly disagree"}
    assert body["scale"][-1] == {"value": None, "label": "Can't say"}
    assert [field["name"] for field in body["comment_fields"]] == [
        "management",
        "leadership",
        "keep_doing",
        "start_doing",
    ]
    invitation.refresh_from_db()
    assert invitation.opened_at is not None
    assert invitation.status == Invitation.Status.OPEN


def test_manager_answers_are_announced_as_identified(client: Client, make_link: Any) -> None:
    _, token = make_link(group="manager")
    anonymity = client.get(f"/api/survey/{token}/").json()["anonymity"]
    assert anonymity["identified"] is True
    assert anonymity["minimum_group_size"] is None


def test_submit_creates_one_response_and_returns_no_id(invitation: Invitation, token: str) -> None:
    # No session and no CSRF token: the API authenticates nobody, the token is the key.
    client = Client(enforce_csrf_checks=True)
    response = post(client, f"/api/survey/{token}/responses/", full_answers(invitation.cycle, keep_doing="Demos"))
    assert response.status_code == 201
    assert response.json() == {"detail": "Thank you. Your answers have been recorded."}
    [stored] = opened_answers(invitation.cycle)
    sealed_id = str(SealedAnswer.objects.get().pk)
    assert sealed_id not in response.content.decode()
    assert stored["comments"]["keep_doing"] == "Demos"
    assert "sessionid" not in response.cookies
    # The link is used now: a repeated submit (its first answer lost on the way back) is
    # told "already received", as documented, and changes nothing.
    again = post(client, f"/api/survey/{token}/responses/", full_answers(invitation.cycle))
    assert again.status_code == 409
    assert again.json()["detail"].startswith("Already received")
    assert SealedAnswer.objects.count() == 1
    # Any other link that cannot be answered keeps the neutral 404.
    unknown = post(client, "/api/survey/not-a-token/responses/", full_answers(invitation.cycle))
    assert (unknown.status_code, unknown.json()) == (404, NOT_OPEN)
    assert len(opened_answers(invitation.cycle)) == 1


def test_invalid_answers_get_400_naming_each_field(client: Client, invitation: Invitation, token: str) -> None:
    codes = item_codes(invitation.cycle)
    answers = full_answers(invitation.cycle)
    del answers["ratings"][codes[0]]
    answers["ratings"][codes[1]] = 9
    answers["ratings"][codes[2]] = "4"
    answers["ratings"]["no_such-1"] = 3
    answers["comments"] = {"management": "m" * 4001, "mood": "fine"}
    response = post(client, f"/api/survey/{token}/responses/", answers)
    assert response.status_code == 400
    errors = response.json()
    assert set(errors["ratings"]) == {codes[0], codes[1], codes[2], "no_such-1"}
    assert set(errors["comments"]) == {"management", "mood"}
    assert all(isinstance(messages, list) and messages for messages in errors["ratings"].values())
    assert not SealedAnswer.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "{not json"])
def test_malformed_bodies_get_400(client: Client, token: str, body: str) -> None:
    response = client.post(f"/api/survey/{token}/responses/", body, content_type="application/json")
    assert response.status_code == 400
    assert not SealedAnswer.objects.exists()


def test_a_submit_that_loses_the_race_gets_409_already_submitted(
    client: Client, invitation: Invitation, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: the link is open when this request reads it, but another request's answer is
    # stored before this one claims the invitation
    claim = services._invitation_claim

    def claim_after_another(open_invitation: Any, **kwargs: Any) -> None:
        Invitation.objects.filter(pk=open_invitation.id).update(status=Invitation.Status.COMPLETED)
        claim(open_invitation, **kwargs)

    monkeypatch.setattr(services, "_invitation_claim", claim_after_another)
    # when
    response = post(client, f"/api/survey/{token}/responses/", full_answers(invitation.cycle, value=1))
    # then
    assert response.status_code == 409
    assert response.json() == {"detail": "This survey was already submitted or is no longer open."}
    assert not SealedAnswer.objects.exists()


def test_decline_with_reason(client: Client, invitation: Invitation, token: str) -> None:
    response = post(client, f"/api/survey/{token}/decline/", {"reason": "On leave until next year."})
    assert response.status_code == 201
    assert [decline["reason"] for decline in opened_declines(invitation.cycle)] == ["On leave until next year."]
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert client.get(f"/api/survey/{token}/").json() == NOT_OPEN


def test_decline_reason_too_long_gets_400(client: Client, invitation: Invitation, token: str) -> None:
    response = post(client, f"/api/survey/{token}/decline/", {"reason": "x" * 2001})
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert post(client, f"/api/survey/{token}/decline/", ["no"]).status_code == 400
    assert not SealedAnswer.objects.exists()


@pytest.mark.parametrize("endpoint", ["", "responses/", "decline/"])
def test_bad_tokens_get_the_same_404_on_every_endpoint(client: Client, endpoint: str, invitation: Invitation) -> None:
    path = f"/api/survey/not-a-token-1234567890/{endpoint}"
    response = client.get(path) if not endpoint else post(client, path, full_answers(invitation.cycle))
    assert (response.status_code, response.json()) == (404, NOT_OPEN)


def test_the_survey_endpoints_are_documented_as_public(client: Client) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    read = paths["/api/survey/{token}/"]["get"]
    submit = paths["/api/survey/{token}/responses/"]["post"]
    decline = paths["/api/survey/{token}/decline/"]["post"]
    assert set(submit["responses"]) == {"201", "400", "404", "405", "409", "413", "429"}
    components = schema["components"]["schemas"]

    def request_schema(operation: dict[str, Any]) -> dict[str, Any]:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]

    assert set(request_schema(submit)["properties"]) == {"ratings", "comments"}
    assert set(request_schema(decline)["properties"]) == {"reason"}
    assert "200" in read["responses"]
    for operation in (read, submit, decline):
        assert operation.get("security") in ([], [{}], None)
