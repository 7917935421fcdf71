"""docker-compose.yml is valid and wires the five services the way users will run them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    binary = shutil.which("docker-compose")
    assert binary, "Debian's docker-compose is installed by .ci/system-packages test"
    result = subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=BASE_DIR,
        env={**os.environ, "SECRET_KEY": "s" * 60, "RESPONSE_SEAL_KEY": "k" * 43},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_has_the_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "web", "worker", "beat", "proxy"}


def test_only_the_tls_proxy_is_published(compose: dict[str, Any]) -> None:
    # Production settings redirect to HTTPS and send cookies over HTTPS only, so plain
    # HTTP from gunicorn must not be what users reach.
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"proxy"}
    proxy = compose["services"]["proxy"]
    assert {str(port["target"]) if isinstance(port, dict) else str(port).split(":")[-1] for port in proxy["ports"]} == {
        "80",
        "443",
    }
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    caddyfile = (BASE_DIR / "config" / "Caddyfile").read_text()
    assert "reverse_proxy web:8000" in caddyfile


def test_app_services_use_external_servers_and_production_settings(compose: dict[str, Any]) -> None:
    for name in ("web", "worker", "beat"):
        environment = compose["services"][name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert environment["DATABASE_URL"].startswith("postgres://balance360:")
        assert environment["DATABASE_URL"].endswith("@postgres:5432/balance360")
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert environment["RESPONSE_SEAL_KEY"] == "k" * 43
        assert compose["services"][name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_commands_and_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "gunicorn" in " ".join(services["web"]["command"])
    assert services["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "config", "beat"]
    for name in ("postgres", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "caddydata"}


def test_redis_keeps_every_message_it_accepted(compose: dict[str, Any]) -> None:
    # The broker is only a doorbell, but a doorbell that forgets on every restart or evicts
    # under memory pressure delays every job until the sweep; the flags must be separate
    # arguments (one "--save 60 1" string is silently ignored by redis-server).
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags == {"--appendonly": "yes", "--appendfsync": "everysec", "--maxmemory-policy": "noeviction"}
    volumes = compose["services"]["redis"]["volumes"]
    assert any((v["target"] if isinstance(v, dict) else v.split(":")[1]) == "/data" for v in volumes)


@pytest.mark.parametrize("missing", ["SECRET_KEY", "RESPONSE_SEAL_KEY"])
def test_compose_refuses_to_start_without_its_secrets(missing: str) -> None:
    env = {**os.environ, "SECRET_KEY": "s" * 60, "RESPONSE_SEAL_KEY": "k" * 43}
    del env[missing]
    result = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_app_reads_client_addresses_through_the_one_proxy(compose: dict[str, Any]) -> None:
    # The sign-in and link throttles count per client address; behind Caddy, REMOTE_ADDR
    # is the proxy's own, which would make every visitor one.
    assert compose["services"]["web"]["environment"]["TRUSTED_PROXY_HOPS"] == "1"


def test_the_image_leaves_out_the_benchmarks_and_their_bare_views() -> None:
    # bench/urls.py serves a login-free INSERT view: it must not ship where DJANGO_SETTINGS_MODULE could name it.
    ignored = (BASE_DIR / ".dockerignore").read_text().split()
    assert "bench" in ignored
