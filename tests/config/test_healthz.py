from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client

from config import views
from config.embedded import free_port


@pytest.mark.django_db
def test_healthy_service_answers_200(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checked": ["database", "broker"]}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_unreachable_broker_answers_503_naming_only_it(client: Client, settings: Any, caplog: Any) -> None:
    port = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failures": ["broker: unavailable"]}
    # the operator finds the reason in the log, not the visitor in the answer
    assert str(port) not in response.content.decode()
    assert any(
        "broker unavailable" in record.getMessage() and str(port) in record.getMessage() for record in caplog.records
    )


@pytest.mark.django_db(transaction=True)
def test_broken_database_answers_503_naming_it(client: Client, settings: Any) -> None:
    from django.db import connections

    connection = connections["default"]
    connection.close()
    original = connection.settings_dict["NAME"]
    connection.settings_dict["NAME"] = "no_such_database"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failures": ["database: unavailable"]}
    assert "no_such_database" not in response.content.decode()


@pytest.fixture
def worker_unseen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget any worker a probe of an earlier test saw alive."""
    monkeypatch.setattr(views, "_worker_seen_at", [float("-inf")])


def test_worker_check_round_trips_a_task(client: Client, celery_worker: Any, worker_unseen: None) -> None:
    response = client.get("/healthz?worker=1")
    assert response.status_code == 200
    assert response.json()["checked"] == ["database", "broker", "worker"]


@pytest.mark.django_db
def test_a_worker_seen_moments_ago_is_not_asked_again(
    client: Client, worker_unseen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a probe saw a worker just now
    views._worker_seen_at[0] = time.monotonic()
    asked: list[int] = []
    monkeypatch.setattr("config.celery.app.control.ping", lambda **kwargs: asked.append(1) or [])
    # when: probes follow at once
    for _ in range(20):
        assert client.get("/healthz?worker=1").status_code == 200
    # then: none of them waited for the workers' answer
    assert asked == []


@pytest.mark.django_db
def test_healthz_refuses_writes(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_worker_check_without_a_worker_answers_503_naming_it(client: Client, worker_unseen: None) -> None:
    response = client.get("/healthz?worker=1")
    assert response.status_code == 503
    assert response.json()["failures"] == ["worker: unavailable"]


@pytest.mark.django_db
def test_probes_by_internal_address_are_answered_whatever_the_allowed_hosts(client: Client, settings: Any) -> None:
    # given: production-like host and HTTPS settings
    settings.ALLOWED_HOSTS = ["feedback.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    # when: a container probe calls the server by its internal address over plain HTTP
    probe = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    other = client.get("/accounts/login/", HTTP_HOST="127.0.0.1:8000")
    # then: the probe gets its answer, every other path still refuses the unknown host
    assert probe.status_code == 200
    assert probe.json()["status"] == "ok"
    assert other.status_code == 400
