from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_keys, env_list, env_str, key_decode
from config.settings.published_keys import PUBLISHED

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("Yes", True), ("0", False), ("off", False)])
def test_env_bool_reads_usual_spellings(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("B360_FLAG", raw)
    assert env_bool("B360_FLAG", not expected) is expected


def test_env_bool_refuses_a_typo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B360_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="B360_FLAG"):
        env_bool("B360_FLAG", False)


def test_env_int_refuses_words_and_values_below_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B360_NUMBER", "sixty")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("B360_NUMBER", 1)
    monkeypatch.setenv("B360_NUMBER", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env_int("B360_NUMBER", 1, minimum=0)
    monkeypatch.setenv("B360_NUMBER", "42")
    assert env_int("B360_NUMBER", 1, minimum=0) == 42


def test_env_float_and_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("B360_CUT", "3.75")
    assert env_float("B360_CUT", 3.5) == 3.75
    monkeypatch.setenv("B360_CUT", "high")
    with pytest.raises(ImproperlyConfigured):
        env_float("B360_CUT", 3.5)
    monkeypatch.setenv("B360_HOSTS", " a.example , b.example,,")
    assert env_list("B360_HOSTS", []) == ["a.example", "b.example"]


def test_required_variable_missing_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("B360_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="B360_REQUIRED is required"):
        env_str("B360_REQUIRED")


def _manage(settings_module: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "ALLOWED_HOSTS": "balance360.example",
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deployment_check() -> None:
    result = _manage(
        "config.settings.production",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY=secrets.token_urlsafe(50),
        RESPONSE_SEAL_KEY=secrets.token_urlsafe(32),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_published_seal_keys() -> None:
    for key in PUBLISHED:
        result = _manage(
            "config.settings.production", "check", SECRET_KEY=secrets.token_urlsafe(50), RESPONSE_SEAL_KEY=key
        )
        assert result.returncode != 0
        assert "RESPONSE_SEAL_KEY must be a key of your own" in result.stderr


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "RESPONSE_SEAL_KEY is required"),
        ("not base64 !", "Key 1 of RESPONSE_SEAL_KEY is not URL-safe base64"),
        ("c2hvcnQ=", "Key 1 of RESPONSE_SEAL_KEY must be 32 bytes (5 given)"),
    ],
)
def test_a_missing_or_malformed_seal_key_stops_start_up(value: str, message: str) -> None:
    result = _manage("config.settings.local", "check", RESPONSE_SEAL_KEY=value)
    assert result.returncode != 0
    assert message in result.stderr


def test_seal_keys_rotate_through_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    monkeypatch.setenv("B360_KEYS", f"{new}, {old}")
    assert env_keys("B360_KEYS") == [key_decode(new), key_decode(old)]


def test_production_refuses_a_weak_secret_key() -> None:
    result = _manage("config.settings.production", "check", SECRET_KEY="short")
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 characters" in result.stderr


def test_a_bad_variable_stops_start_up_with_its_name() -> None:
    result = _manage("config.settings.local", "check", CONN_MAX_AGE="sixty")
    assert result.returncode != 0
    assert "CONN_MAX_AGE='sixty' is not an integer" in result.stderr


def test_the_image_builds_with_a_seal_key_production_refuses() -> None:
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    keys = re.findall(r"RESPONSE_SEAL_KEY=(\S+)", dockerfile)
    assert keys and set(keys) <= set(PUBLISHED)


@pytest.mark.parametrize(("value", "expected"), [(None, "100"), ("7", "7"), ("0", "None")])
def test_the_worker_replaces_a_pool_process_after_its_max_tasks_unless_zero(value: str | None, expected: str) -> None:
    extra = {} if value is None else {"CELERY_WORKER_MAX_TASKS_PER_CHILD": value}
    env = {name: text for name, text in os.environ.items() if name != "CELERY_WORKER_MAX_TASKS_PER_CHILD"}
    result = subprocess.run(
        [sys.executable, "-c", "from config.celery import app; print(app.conf.worker_max_tasks_per_child)"],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.local", **extra},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected]


def test_a_new_pool_process_has_time_to_load_the_renderer_before_it_must_report_ready() -> None:
    from config.celery import app

    # Celery's own default (4 s) is shorter than a first PDF render on a cold machine.
    assert app.conf.worker_proc_alive_timeout >= 30
