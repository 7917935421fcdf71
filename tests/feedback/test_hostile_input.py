"""Odd and hostile input on the survey: a 4xx naming the field, never a 500, nothing typed lost."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from feedback.models import SealedAnswer
from surveys.models import Invitation
from tests.feedback.helpers import form_data, full_answers, opened_answers


def post_json(client: Client, path: str, body: str) -> Any:
    return client.post(path, body, content_type="application/json")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [25, 1000, 100_000])
@pytest.mark.parametrize("action", ["responses", "decline"])
def test_deeply_nested_json_is_refused_not_crashed(client: Client, token: str, depth: int, action: str) -> None:
    body = '{"ratings": ' + nested(depth) + "}"
    response = post_json(client, f"/api/survey/{token}/{action}/", body)
    assert response.status_code == 400
    assert "nested more than 20 levels" in response.json()["detail"]
    assert not SealedAnswer.objects.exists()


def test_brackets_inside_strings_do_not_count_as_nesting(client: Client, invitation: Invitation, token: str) -> None:
    answers = full_answers(invitation.cycle, management="[[[[" * 30 + "{{{{" * 30)
    response = post_json(client, f"/api/survey/{token}/responses/", json.dumps(answers))
    assert response.status_code == 201
    [stored] = opened_answers(invitation.cycle)
    assert stored["comments"]["management"].startswith("[[[[")


def test_a_lone_surrogate_in_a_comment_is_refused_naming_the_comment(
    client: Client, invitation: Invitation, token: str
) -> None:
    body = json.dumps(full_answers(invitation.cycle, keep_doing="ok")).replace('"ok"', '"ok \\ud800"')
    response = post_json(client, f"/api/survey/{token}/responses/", body)
    assert response.status_code == 400
    [message] = response.json()["comments"]["keep_doing"]
    assert "unpaired surrogate, U+D800" in message
    assert not SealedAnswer.objects.exists()


@pytest.mark.parametrize(("escape", "code"), [("\\b", "U+0008"), ("\\f", "U+000C"), ("\\u0000", "U+0000")])
def test_a_control_character_written_as_a_json_escape_is_refused(
    client: Client, invitation: Invitation, token: str, escape: str, code: str
) -> None:
    body = json.dumps(full_answers(invitation.cycle, keep_doing="ok")).replace('"ok"', f'"ok {escape}"')
    response = post_json(client, f"/api/survey/{token}/responses/", body)
    assert response.status_code == 400
    [message] = response.json()["comments"]["keep_doing"]
    assert f"invisible control character ({code}, character 4)" in message
    assert not SealedAnswer.objects.exists()


@pytest.mark.parametrize(("raw", "code"), [("\x7f", "U+007F"), ("\x85", "U+0085")])
def test_a_refused_character_typed_raw_in_json_is_refused(
    client: Client, invitation: Invitation, token: str, raw: str, code: str
) -> None:
    # JSON allows DEL and the C1 controls unescaped: the body's own text holds them.
    body = json.dumps(full_answers(invitation.cycle, keep_doing="ok"), ensure_ascii=False).replace(
        '"ok"', f'"ok {raw}"'
    )
    response = post_json(client, f"/api/survey/{token}/responses/", body)
    assert response.status_code == 400
    [message] = response.json()["comments"]["keep_doing"]
    assert f"invisible control character ({code}, character 4)" in message


def test_a_clean_body_is_not_walked_value_by_value(
    client: Client, invitation: Invitation, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def walked(text: str) -> None:
        raise AssertionError(f"{text!r} was checked on its own")

    monkeypatch.setattr("config.parsers.text_problem", walked)
    body = json.dumps(full_answers(invitation.cycle, keep_doing="Keeps the plan visible.\nAnd the team."))
    assert post_json(client, f"/api/survey/{token}/responses/", body).status_code == 201


def test_escapes_of_allowed_characters_are_stored_as_decoded(
    client: Client, invitation: Invitation, token: str
) -> None:
    written = '"Line one\\nline two\\t\\"quoted\\" caf\\u00e9 \\/ \\\\u0000 \\ud83d\\ude42"'
    body = json.dumps(full_answers(invitation.cycle, keep_doing="ok")).replace('"ok"', written)
    response = post_json(client, f"/api/survey/{token}/responses/", body)
    assert response.status_code == 201, response.content
    [stored] = opened_answers(invitation.cycle)
    assert stored["comments"]["keep_doing"] == 'Line one\nline two\t"quoted" café / \\u0000 🙂'


def test_a_surrogate_in_a_decline_reason_is_refused_naming_the_reason(client: Client, token: str) -> None:
    response = post_json(client, f"/api/survey/{token}/decline/", '{"reason": "\\udfff"}')
    assert response.status_code == 400
    assert list(response.json()) == ["reason"]
    assert not SealedAnswer.objects.exists()


def test_a_surrogate_in_a_field_name_is_refused(client: Client, token: str) -> None:
    response = post_json(client, f"/api/survey/{token}/responses/", '{"ratings": {"\\ud83d": 3}}')
    assert response.status_code == 400
    assert "field name" in response.json()["ratings"][0]


def test_a_control_character_typed_in_the_form_is_refused_and_the_text_kept(
    client: Client, invitation: Invitation, token: str
) -> None:
    url = client.get(f"/s/{token}/")["Location"]
    response = client.post(url, form_data(invitation.cycle, management="Plans\x07 well"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "invisible control character (U+0007, character 6)" in html
    assert "Plans\x07 well</textarea>" in html
    assert not SealedAnswer.objects.exists()


def test_a_form_post_over_the_size_limit_gets_the_survey_back_to_restore_the_draft(
    client: Client, invitation: Invitation, token: str, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    url = client.get(f"/s/{token}/")["Location"]
    response = client.post(url, form_data(invitation.cycle, management="x" * (70 * 1024)))
    assert response.status_code == 413
    html = response.content.decode()
    assert "Your answers were not sent" in html
    assert "larger than 64 KB" in html
    # the page is the form itself, not marked as an echo of the post: survey.js then
    # restores what this browser kept as the draft
    assert 'id="survey-form"' in html and "data-from-post" not in html
    assert response["Content-Security-Policy"]
    assert not SealedAnswer.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN
    # and the same page still takes the answers once they fit
    assert client.post(url, form_data(invitation.cycle)).status_code == 303


def test_a_decline_over_the_size_limit_gets_the_survey_back(
    client: Client, invitation: Invitation, token: str, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    key = client.get(f"/s/{token}/")["Location"].rstrip("/").rsplit("/", 1)[-1]
    response = client.post(f"/survey/{key}/decline/", {"reason": "x" * (70 * 1024)})
    assert response.status_code == 413
    assert "Your answers were not sent" in response.content.decode()
    assert not SealedAnswer.objects.exists()


def test_a_file_smuggled_into_the_survey_form_counts_toward_its_limit(
    client: Client, invitation: Invitation, token: str, settings: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    url = client.get(f"/s/{token}/")["Location"]
    data = {**form_data(invitation.cycle), "extra": SimpleUploadedFile("x.bin", b"x" * (200 * 1024))}
    response = client.post(url, data)
    assert response.status_code == 413
    assert "Your answers were not sent" in response.content.decode()
    assert not SealedAnswer.objects.exists()
