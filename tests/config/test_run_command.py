"""The README's run command: serves the demo, supervises its children, survives its own leftovers.

Real processes on 127.0.0.1, every wait bounded. One run command is shared by the checks
that leave it as they found it (its children killed and restarted, a second launcher
refused), so the whole file costs a handful of start-ups.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from config.embedded import EmbeddedPostgres, EmbeddedRedis, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

LAUNCHER = [sys.executable, "-m", "config.launcher"]
# The same launcher with its children spawned without the parent-death signal, as on a
# system without prctl: what the checks below must see fail.
LAUNCHER_WITHOUT_PARENT_DEATH_SIGNAL = [
    sys.executable,
    "-c",
    "import sys, config.embedded as embedded; embedded.die_with_parent = lambda signum: None; "
    "from config.launcher import Launcher; sys.exit(Launcher().run())",
]


class RunCommand:
    def __init__(self, var_dir: Path, port: int, command: list[str] = LAUNCHER) -> None:
        self.var_dir = var_dir
        self.port = port
        self.output: list[str] = []
        self.seen: list[psutil.Process] = []
        env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        # A child the test kills leaves its temporary files (a pool's pymp-*) beside its data.
        env.update(VAR_DIR=str(var_dir), PORT=str(port), TMPDIR=str(var_dir.parent))
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

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
                self._reader.join(timeout=5)
                if phrase in self.text:
                    return
                pytest.fail(f"run command exited with {self.process.returncode}:\n{self.text}")
            if time.monotonic() > deadline:
                pytest.fail(f"{phrase!r} not printed within {timeout}s:\n{self.text}")
            time.sleep(0.2)

    def finished(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def get(self, path: str) -> tuple[int, str]:
        # Cookies kept across the redirect: a survey link is exchanged for a key kept in a cookie.
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        with opener.open(f"http://127.0.0.1:{self.port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()

    def wait_healthy(self, path: str = "/healthz", timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = self.get(path)
                if status == 200:
                    return body
            except OSError as error:
                body = str(error)
            if time.monotonic() > deadline:
                pytest.fail(f"{path} not 200 within {timeout}s (last: {body}):\n{self.text[-3000:]}")
            time.sleep(0.5)

    def child(self, name: str) -> psutil.Process:
        """The child the launcher recorded under ``name`` (web, worker, beat, redis, postgres)."""
        record = json.loads((self.var_dir / "launcher-children.json").read_text())
        return psutil.Process(record["children"][name]["pid"])

    def tree(self) -> list[psutil.Process]:
        tree = psutil.Process(self.process.pid).children(recursive=True)
        self.seen += tree  # for the clean-up, should the test fail after the launcher's death
        return tree

    def redis_url(self) -> str:
        line = next(line for line in self.output if line.startswith("Embedded redis started"))
        return line.rsplit(": ", 1)[1].strip().rstrip(".")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.finished(timeout=90)


def _recorded_children(var_dir: Path) -> list[psutil.Process]:
    try:
        record = json.loads((var_dir / "launcher-children.json").read_text())["children"]
    except (OSError, ValueError, KeyError):
        return []
    children = []
    for entry in record.values():
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(entry["pid"])
            if abs(process.create_time() - entry["started"]) < 0.05:
                children.append(process)
    return children


def _kill_everything(runs: list[RunCommand], directories: list[Path]) -> None:
    """Whatever happened, no process of a test's run commands may outlive it."""
    leftovers: list[psutil.Process] = []
    for run in runs:
        if run.process.poll() is None:
            leftovers += run.tree()
            run.process.kill()
            run.process.wait(timeout=10)
        leftovers += run.seen  # psutil checks the start time: a reused pid is not killed
        leftovers += _recorded_children(run.var_dir)
    for process in psutil.process_iter(attrs=["cmdline"]):
        try:
            where = " ".join(process.info["cmdline"] or []) + " " + process.cwd()
        except psutil.Error:
            continue
        if any(str(directory) in where for directory in directories):
            leftovers.append(process)
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., RunCommand]]:
    runs: list[RunCommand] = []

    def start(var_dir: Path, port: int, command: list[str] = LAUNCHER) -> RunCommand:
        run = RunCommand(var_dir, port, command)
        runs.append(run)
        return run

    yield start
    _kill_everything(runs, [tmp_path])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunCommand]:
    """One run command for the checks that leave it running and healthy."""
    directory = tmp_path_factory.mktemp("shared-run")
    run = RunCommand(directory / "var", free_port())
    try:
        run.wait_for("Balance 360 is running at")
        yield run
        assert run.process.poll() is None, f"the run command stopped on its own:\n{run.text}"
        assert run.stop() == 0
    finally:
        _kill_everything([run], [directory])


def _database(var_dir: Path) -> psycopg.Connection:
    return psycopg.connect(host=str(var_dir / "pgdata"), user="postgres", dbname="balance360", autocommit=True)


def _gone_within(processes: list[psutil.Process], timeout: float) -> list[str]:
    """The processes still alive after ``timeout`` seconds, described."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    described = []
    for process in alive:
        try:
            described.append(f"{process.pid} {process.name()}")
        except psutil.Error:
            continue
    return described


def test_run_command_serves_the_demo_and_keeps_data_across_restarts(
    tmp_path: Path, start_run: Callable[..., RunCommand]
) -> None:
    var_dir = tmp_path / "var"
    port = free_port()

    # first start: embedded servers, migrations, demo seed, web + worker + beat
    run = start_run(var_dir, port)
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
    # gunicorn's access log writes the link's visit with its token taken out.
    run.wait_for('method=GET path="/s/[redacted]/" status=303', timeout=30)
    token = links[0].rstrip("/").rsplit("/", 1)[1]
    assert not [line for line in run.output if "access method=" in line and token in line]
    with _database(var_dir) as conn:
        conn.execute("INSERT INTO auth_group (name) VALUES ('kept across restarts')")
        (teams,) = conn.execute("SELECT count(*) FROM surveys_team").fetchone()
    assert teams == 1
    # reports queued with no message left for them (Redis flushed) when Ctrl-C comes: before,
    # nothing ever picked them up again and the cycle stayed "queued" for good
    with _database(var_dir) as conn:
        conn.execute("UPDATE reports_report SET status = 'queued', attempts = 0, claimed_by = '', not_before = now()")
        (queued,) = conn.execute("SELECT count(*) FROM reports_report WHERE status = 'queued'").fetchone()
    assert queued > 0
    redis.Redis.from_url(run.redis_url(), socket_timeout=5).flushall()
    tree = run.tree()
    assert run.stop() == 0
    assert "Balance 360 stopped" in run.text
    # the web server first, the worker last (it may finish its task), the servers it needs after it
    stops = [line.split(": stopping ", 1)[1].split(" (")[0].strip() for line in run.output if ": stopping " in line]
    assert stops == ["web", "beat", "worker", "the embedded servers"]
    assert _gone_within(tree, timeout=5) == []

    # second start on the same var/: the data is still there and the demo is not seeded twice
    run = start_run(var_dir, port)
    run.wait_for("Balance 360 is running at")
    assert "Demo data already present" in run.text
    with _database(var_dir) as conn:
        (kept,) = conn.execute("SELECT count(*) FROM auth_group WHERE name = 'kept across restarts'").fetchone()
        (teams,) = conn.execute("SELECT count(*) FROM surveys_team").fetchone()
    assert (kept, teams) == (1, 1)
    # the reports left queued are built by the new run: beat's sweep rings for them
    deadline = time.monotonic() + 120
    while True:
        with _database(var_dir) as conn:
            (left,) = conn.execute("SELECT count(*) FROM reports_report WHERE status <> 'ready'").fetchone()
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert left == 0, f"{left} report(s) still not ready two minutes after the restart:\n{run.text[-3000:]}"
    assert run.stop() == 0


def test_the_embedded_redis_of_a_run_appends_every_write_to_disk(running: RunCommand) -> None:
    """Seen to fail before: ``CONFIG GET save`` answered "" and appendonly "no" (nothing was ever saved)."""
    client = redis.Redis.from_url(running.redis_url(), socket_timeout=5)
    config = {key: client.config_get(key)[key] for key in ("appendonly", "appendfsync", "maxmemory-policy", "dir")}
    assert config == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory-policy": "noeviction",
        "dir": str(running.var_dir / "redis"),
    }


def test_killed_children_are_restarted_and_the_launcher_keeps_running(running: RunCommand) -> None:
    """Seen to fail with the former launcher, and with the restart replaced by the former
    "exited unexpectedly" error: the worker's SIGKILL stopped web, beat and Redis with it."""
    # given: a key in the broker's Redis, on disk after a second (appendfsync everysec)
    client = redis.Redis.from_url(running.redis_url(), socket_timeout=5)
    client.set("test:kept-across-a-redis-kill", "yes")
    time.sleep(1.2)

    # when: the worker, the web server and Redis are each killed with SIGKILL
    for name in ("worker", "web", "redis"):
        killed = running.child(name)
        killed.kill()
        running.wait_for(f"{name} (pid {killed.pid}) was killed by SIGKILL (exit code -9); restarting it in", 30)
        running.wait_for(f"{name} restarted (pid ", 30)
        assert running.child(name).pid != killed.pid

    # then: the service answers again, a worker included (the new web server has asked no
    # worker yet, so the answer is a real ping through the restarted Redis)
    body = running.wait_healthy("/healthz?worker=1", timeout=60)
    assert '"worker"' in body
    assert client.get("test:kept-across-a-redis-kill") == b"yes"
    assert running.process.poll() is None


def test_a_second_run_command_is_refused_and_leaves_the_first_alone(
    running: RunCommand, start_run: Callable[..., RunCommand], tmp_path: Path
) -> None:
    """Seen to fail with the former launcher: it attached to the first run's PostgreSQL, printed
    "Balance 360 is running" although its web server could not bind, and stopped that PostgreSQL
    on exit. Seen to fail with the lock on var/launcher.pid left out: the second run command
    took the first one's recorded children for leftovers and stopped them."""
    postgres = running.child("postgres")

    # when: a second run command on the same var/, then one on another var/ but the same port
    same_var = start_run(running.var_dir, free_port())
    assert same_var.finished() == 1
    same_port = start_run(tmp_path / "other-var", running.port)
    assert same_port.finished() == 1

    # then: each names what is in the way (the first run command's process) and started nothing
    first = f"pid {running.process.pid} ("
    assert f"another run command, {first}" in same_var.text
    assert f"is already running on {running.var_dir}" in same_var.text
    assert f"port {running.port} on 127.0.0.1 is in use by {first}" in same_port.text
    for refused in (same_var, same_port):
        assert "Balance 360 is running" not in refused.text
        assert "Embedded database started" not in refused.text
    # and the first run's PostgreSQL is the same process, still serving
    assert running.child("postgres").pid == postgres.pid
    assert postgres.is_running()
    running.wait_healthy(timeout=10)


def test_a_postgresql_the_run_command_did_not_start_is_named_and_left_running(
    tmp_path: Path, start_run: Callable[..., RunCommand]
) -> None:
    # given: a PostgreSQL on var/pgdata that no run command started
    var_dir = tmp_path / "var"
    foreign = EmbeddedPostgres(var_dir / "pgdata", ephemeral=True)
    foreign.start()
    try:
        assert foreign.process is not None
        # when: the run command starts on that var/
        run = start_run(var_dir, free_port())
        assert run.finished() == 1
        # then: it names it, does not claim to run, and leaves it running
        assert f"PostgreSQL pid {foreign.process.pid} (" in run.text
        assert f"is already running on {var_dir / 'pgdata'} and was not started by this run command" in run.text
        assert "Balance 360 is running" not in run.text
        assert foreign.process.poll() is None
        with _database(var_dir) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        foreign.stop()


def test_a_redis_the_run_command_did_not_start_is_named_and_left_running(
    tmp_path: Path, start_run: Callable[..., RunCommand]
) -> None:
    # given: a redis-server on var/redis that no run command started (it would share appendonly.aof)
    var_dir = tmp_path / "var"
    foreign = EmbeddedRedis(var_dir / "redis")
    url = foreign.start()
    try:
        assert foreign.process is not None
        # when: the run command starts on that var/
        run = start_run(var_dir, free_port())
        assert run.finished() == 1
        # then: it names it and leaves it running, and stops the PostgreSQL it had started itself
        assert f"redis-server pid {foreign.process.pid} (" in run.text
        assert "Balance 360 is running" not in run.text
        assert redis.Redis.from_url(url, socket_timeout=5).ping()
        assert not (var_dir / "pgdata" / "postmaster.pid").exists()
    finally:
        foreign.stop()


@pytest.mark.parametrize("parent_death_signal", [True, False], ids=["launcher", "without-parent-death-signal"])
def test_a_killed_run_command_takes_its_children_with_it_and_the_next_run_is_healthy(
    parent_death_signal: bool, tmp_path: Path, start_run: Callable[..., RunCommand]
) -> None:
    """The second case is the check that the first one bites: without the parent-death signal
    every child survives the launcher's SIGKILL (and the orphan keeps answering /healthz);
    the next run then finds them through its record in var/, names and stops them."""
    var_dir = tmp_path / "var"
    port = free_port()
    command = LAUNCHER if parent_death_signal else LAUNCHER_WITHOUT_PARENT_DEATH_SIGNAL
    # given: a run command up and serving
    run = start_run(var_dir, port, command)
    run.wait_for("Balance 360 is running at")
    tree = run.tree()
    names = {process.name() for process in tree}
    assert {"postgres", "redis-server"} <= names
    assert any(name.startswith("gunicorn") for name in names)
    assert any("celery" in name for name in names)

    # when: it is killed with SIGKILL
    run.process.kill()
    run.finished(timeout=10)

    # then: none of its processes survives (PostgreSQL's fast shutdown takes a moment)
    survivors = _gone_within(tree, timeout=30 if parent_death_signal else 3)
    if parent_death_signal:
        assert survivors == []
    else:
        assert {"postgres", "redis-server"} <= {survivor.split(" ", 1)[1] for survivor in survivors}

    # and the next run on the same var/ comes up healthy
    again = start_run(var_dir, port)
    again.wait_for("Balance 360 is running at")
    again.wait_healthy("/healthz?worker=1", timeout=30)
    if not parent_death_signal:
        for name in ("web", "beat", "worker", "redis", "postgres"):
            assert f"stopping {name} pid " in again.text
        assert _gone_within(tree, timeout=5) == []
    assert again.stop() == 0
