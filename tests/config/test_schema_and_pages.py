from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.mark.django_db
def test_openapi_schema_is_served(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Balance 360 API"
    assert "tokenAuth" in schema["components"]["securitySchemes"]


@pytest.mark.django_db
def test_api_docs_load_nothing_from_third_parties(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "https://" not in html


@pytest.mark.django_db
def test_home_requires_sign_in(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_signed_in_user_sees_home(client: Client, manager: Any) -> None:
    client.force_login(manager)
    response = client.get("/")
    assert response.status_code == 200
    assert "Welcome" in response.content.decode()


@pytest.mark.django_db
def test_wrong_password_keeps_the_username(client: Client, manager: Any) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="alice"' in html
    assert "correct username and password" in html


@pytest.mark.django_db
def test_token_auth_round_trip(client: Client, manager: Any) -> None:
    response = client.post("/api/auth/token/", {"username": "alice", "password": "correct horse battery staple"})
    assert response.status_code == 200
    token = response.json()["token"]
    me = Client().get("/api/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"


@pytest.mark.django_db
def test_token_auth_rejects_bad_credentials_naming_the_problem(client: Client, manager: Any) -> None:
    response = client.post("/api/auth/token/", {"username": "alice"})
    assert response.status_code == 400
    assert "password" in response.json()
    assert client.get("/api/me/").status_code == 403
