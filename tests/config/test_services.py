"""The test suite really runs on PostgreSQL and a Celery worker consuming from Redis."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import connection

from config.celery import app as celery_app
from config.celery import ping

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_database_is_postgresql() -> None:
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        # generate_series and the jsonb operators exist in PostgreSQL only.
        cursor.execute("SELECT sum(n), '{\"a\": 1}'::jsonb ? 'a' FROM generate_series(1, 4) AS n")
        total, has_key = cursor.fetchone()
        cursor.execute("SHOW server_version_num")
        (version,) = cursor.fetchone()
    assert (total, has_key) == (10, True)
    assert int(version) >= 160000


def test_served_processes_keep_persistent_connections() -> None:
    code = (
        "from django.conf import settings; d = settings.DATABASES['default']; "
        "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])"
    )
    for module in ("config.settings.local", "config.settings.production"):
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "--verbosity", "0", "-c", code],
            cwd=BASE_DIR,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": module,
                "SECRET_KEY": secrets.token_urlsafe(50),
                "RESPONSE_SEAL_KEY": secrets.token_urlsafe(32),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["60", "True"], module


def test_broker_is_redis() -> None:
    with celery_app.connection_for_write() as conn:
        assert conn.transport.driver_type == "redis"
        conn.ensure_connection(max_retries=1)
        client = conn.default_channel.client
        assert client.ping() is True
        assert client.info("server")["redis_version"].startswith(("6.", "7.", "8."))


def test_worker_consumes_a_task_sent_through_the_broker(celery_worker: Any) -> None:
    result = ping.apply_async()
    assert result.get(timeout=20) == "pong"
    assert result.state == "SUCCESS"


def test_celery_runs_safely_by_configuration() -> None:
    conf = celery_app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]


@pytest.mark.slow
def test_a_run_stopped_by_a_mistyped_option_leaves_no_server_behind(tmp_path: Path) -> None:
    # given: the embedded servers start before pytest reads its options
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env["TMPDIR"] = str(tmp_path)
    # when: the run stops at once on an option that does not exist
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--no-such-option"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then: it did start its servers in our directory, and none of them outlives it
    assert result.returncode != 0
    assert "--no-such-option" in result.stderr
    import psutil

    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            # redis-server rewrites its command line: its working directory still tells.
            where = " ".join(process.info["cmdline"] or []) + " " + process.cwd()
        except psutil.Error:
            continue
        if str(tmp_path) in where:
            leftovers.append(where)
    assert leftovers == []
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("b360-test-")]


_WORKER_PROBE = """
import json, os
from pathlib import Path


def test_probe() -> None:
    names = ("PYTEST_XDIST_WORKER", "DATABASE_URL", "REDIS_URL", "CACHE_URL", "LOCAL_PORTS")
    record = {name: os.environ.get(name) for name in names}
    Path(os.environ["PROBE_OUT"], record["PYTEST_XDIST_WORKER"]).write_text(json.dumps(record))
"""


def _servers_seen_by_two_workers(tmp_path: Path, given: dict[str, str]) -> list[dict[str, str]]:
    """Run one probe test on each of two xdist workers; what each found in its environment."""
    (tmp_path / "test_probe.py").write_text(_WORKER_PROBE)
    out = tmp_path / "seen"
    out.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_XDIST_WORKER")
    }
    env |= {"TMPDIR": str(tmp_path), "PROBE_OUT": str(out), "PYTHONPATH": str(BASE_DIR), **given}
    plugins = ["-p", "tests.services_plugin", "-p", "no:cacheprovider", "-p", "no:django", "-o", "addopts="]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *plugins,
            "--rootdir",
            str(tmp_path),
            "-n",
            "2",
            "--dist",
            "each",
            str(tmp_path / "test_probe.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(path.read_text()) for path in sorted(out.iterdir())]


@pytest.mark.slow
def test_each_worker_of_a_distributed_run_gets_servers_of_its_own(tmp_path: Path) -> None:
    """Seen to fail when the controller started servers its workers inherited: one URL for both."""
    seen = _servers_seen_by_two_workers(tmp_path, {})
    assert [record["PYTEST_XDIST_WORKER"] for record in seen] == ["gw0", "gw1"]
    for name in ("DATABASE_URL", "REDIS_URL"):
        urls = {record[name] for record in seen}
        assert len(urls) == 2, urls
        assert not any("per-worker" in url for url in urls)
    # and each draws its servers' ports from a share of the ports of its own
    shares = [range(int(low), int(high) + 1) for low, high in (record["LOCAL_PORTS"].split("-") for record in seen)]
    assert shares[0].stop <= shares[1].start, shares
    for record, share in zip(seen, shares, strict=True):
        assert urlsplit(record["REDIS_URL"]).port in share
    # and none of them outlives the run
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("b360-test-")]


@pytest.mark.slow
def test_workers_sharing_given_servers_get_redis_databases_of_their_own(tmp_path: Path) -> None:
    """Seen to fail without the move by two per worker: both workers on database 4."""
    given = {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": "redis://127.0.0.1:6399/4"}
    seen = _servers_seen_by_two_workers(tmp_path, given)
    assert [record["DATABASE_URL"] for record in seen] == [given["DATABASE_URL"]] * 2
    assert [record["REDIS_URL"] for record in seen] == ["redis://127.0.0.1:6399/4", "redis://127.0.0.1:6399/6"]
