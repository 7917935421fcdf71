"""The README's run command really serves the demo, stops cleanly on Ctrl-C and keeps data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from config.embedded import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class RunCommand:
    def __init__(self, var_dir: Path, port: int) -> None:
        self.var_dir = var_dir
        self.port = port
        self.output: list[str] = []
        env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(VAR_DIR=str(var_dir), PORT=str(port))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.launcher"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def text(self) -> str:
        return "".join(self.output)

    def wait_for(self, phrase: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while phrase not in self.text:
            if self.process.poll() is not None:
                pytest.fail(f"run command exited with {self.process.returncode}:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"{phrase!r} not printed within {timeout}s:\n{self.text}")
            time.sleep(0.2)

    def get(self, path: str) -> tuple[int, str]:
        # Cookies kept across the redirect: a survey link is exchanged for a session.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=90)


@pytest.fixture
def var_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "var"
    # Whatever happened, no server may outlive the test.
    for process in psutil.process_iter(attrs=["cmdline"]):
        if str(tmp_path) in " ".join(process.info["cmdline"] or []):
            process.kill()


def _database(var_dir: Path) -> psycopg.Connection:
    return psycopg.connect(host=str(var_dir / "pgdata"), user="postgres", dbname="balance360", autocommit=True)


def test_run_command_serves_the_demo_and_keeps_data_across_restarts(var_dir: Path) -> None:
    port = free_port()

    # first start: embedded servers, migrations, demo seed, web + worker + beat
    run = RunCommand(var_dir, port)
    run.wait_for("Balance 360 is running at")
    assert "Embedded database started" in run.text
    assert "Embedded redis started" in run.text
    assert "login: manager / manager-demo-360" in run.text
    status, body = run.get("/healthz?worker=1")
    assert status == 200
    assert '"worker"' in body
    status, body = run.get("/accounts/login/")
    assert status == 200
    assert "Sign in" in body
    links = [line.split(": ", 1)[1].strip() for line in run.output if f"127.0.0.1:{port}/s/" in line]
    assert len(links) == 2
    status, body = run.get(links[0].removeprefix(f"http://127.0.0.1:{port}"))  # follows the redirect
    assert status == 200
    assert "You are rating" in body
    with _database(var_dir) as conn:
        conn.execute("INSERT INTO auth_group (name) VALUES ('kept across restarts')")
        (teams,) = conn.execute("SELECT count(*) FROM surveys_team").fetchone()
    assert teams == 1
    assert run.stop() == 0
    assert "Balance 360 stopped" in run.text
    leftovers = [
        p.pid for p in psutil.process_iter(attrs=["cmdline"]) if str(var_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []

    # second start on the same var/: the data is still there and the demo is not seeded twice
    run = RunCommand(var_dir, port)
    run.wait_for("Balance 360 is running at")
    assert "Demo data already present" in run.text
    with _database(var_dir) as conn:
        (kept,) = conn.execute("SELECT count(*) FROM auth_group WHERE name = 'kept across restarts'").fetchone()
        (teams,) = conn.execute("SELECT count(*) FROM surveys_team").fetchone()
    assert (kept, teams) == (1, 1)
    assert run.stop() == 0
