"""Every error under /api/ is JSON, whichever layer answers it; pages keep Django's HTML."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from surveys.models import Team
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/api/cycles/null/", "/api/cycles/-1/", "/api/cycles/1.5/", "/api/teams/x/people/", "/api/nothing/"]
)
def test_an_unknown_api_path_answers_json_404(api: APIClient, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", ["/api/teams/", "/api/cycles/", "/api/reports/"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        *[("limit=abc", "limit"), ("limit=0", "limit"), ("limit=-5", "limit")],
        *[("offset=x", "offset"), ("offset=-1", "offset"), ("offset=1.5", "offset"), ("offset=²", "offset")],
    ],
)
def test_a_list_page_that_is_not_a_whole_number_answers_400_naming_it(
    api: APIClient, path: str, query: str, field: str
) -> None:
    response = api.get(f"{path}?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_list_page_past_the_end_is_empty_and_still_counts(api: APIClient, manager: Any) -> None:
    TeamFactory(manager=manager)
    body = api.get("/api/teams/?offset=99999").json()
    assert (body["count"], body["next"], body["results"]) == (1, None, [])
    # a limit above the most a page holds is that most
    assert len(api.get("/api/teams/?limit=100000").json()["results"]) == 1


def test_an_unknown_api_path_answers_json_404_signed_out_too() -> None:
    response = Client().get("/api/cycles/null/")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")


def test_an_unknown_page_keeps_the_html_404(client: Client) -> None:
    response = client.get("/cycles/null/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_the_endpoint_lacks_answers_json_405(api: APIClient) -> None:
    response = api.put("/api/teams/", {"name": "x"}, format="json")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.'}


def test_a_body_over_the_limit_answers_json_413(api: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({"name": "x" * (70 * 1024)})
    response = api.post("/api/teams/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than 64 KB."}
    assert not Team.objects.exists()


def test_a_form_body_over_the_limit_answers_json_413(api: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    response = api.post("/api/auth/token/", {"username": "alice", "password": "x" * (70 * 1024)})
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"


def test_too_many_form_fields_answer_json_400(settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = "&".join(f"f{number}=x" for number in range(20))
    response = Client().post("/api/auth/token/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "non_field_errors" in response.json()


@pytest.mark.urls("tests.config.crash_urls")
def test_a_crash_answers_json_500_without_internals() -> None:
    response = Client(raise_request_exception=False).get("/api/crash/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "a bug" not in response.content.decode()
    assert response.json()["detail"].startswith("Server error")


def test_a_service_validation_error_is_a_400_per_field(api: APIClient, manager: Any) -> None:
    team = TeamFactory(manager=manager)
    team.people.create(name="Ann", email="ann@example.test")
    # the serializer accepts it; the service finds the address taken
    response = api.post(f"/api/teams/{team.pk}/people/", {"name": "Ann B", "email": "ANN@example.test"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"email": ["ann@example.test is already in this team."]}


def test_a_domain_error_is_answered_by_the_same_bridge(api: APIClient, manager: Any) -> None:
    team = TeamFactory(manager=manager)
    response = api.post(
        f"/api/teams/{team.pk}/people/import/",
        {"file": SimpleUploadedFile("people.csv", b"name,email\nAnn,not-an-email\n")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json() == {"file": ["line 2: email: 'not-an-email' is not a valid email address."]}


def test_a_page_post_over_the_limit_answers_a_413_page(client: Client, manager: Any, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    client.force_login(manager)
    response = client.post("/teams/", {"name": "x" * (70 * 1024)})
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "larger than 64 KB, so nothing was saved" in response.content.decode()
    assert not Team.objects.exists()


def _file(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.bin", b"x" * size, content_type="application/octet-stream")


def test_a_file_part_counts_toward_the_limit_even_where_no_file_is_taken(client: Client, settings: Any) -> None:
    # Django counts a form's fields against its limit, not its files: without the cap a
    # sign-in page would take a file of any size from anyone.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    page = client.post("/accounts/login/", {"username": "a", "password": "b", "attachment": _file(200 * 1024)})
    assert page.status_code == 413
    assert "larger than 64 KB, so nothing was saved" in page.content.decode()
    token = Client().post("/api/auth/token/", {"username": "a", "password": "b", "attachment": _file(200 * 1024)})
    assert token.status_code == 413
    assert token.json() == {"detail": "The request body is larger than 64 KB."}


def test_the_people_import_takes_its_two_megabyte_csv_and_no_more(api: APIClient, manager: Any) -> None:
    team = TeamFactory(manager=manager)
    # a file just over 2 MB reaches the import, which names the problem ...
    over = api.post(f"/api/teams/{team.pk}/people/import/", {"file": _file(2 * 1024 * 1024 + 10)})
    assert over.status_code == 400
    assert over.json() == {"file": ["The file is larger than 2 MB."]}
    # ... and a much larger one is refused before it is read
    huge = api.post(f"/api/teams/{team.pk}/people/import/", {"file": _file(5 * 1024 * 1024)})
    assert huge.status_code == 413
