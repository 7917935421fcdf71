"""The run command: the whole service on one machine (``make run``).

Starts embedded PostgreSQL and Redis unless ``DATABASE_URL`` / ``REDIS_URL`` are set,
migrates, seeds the demo once, then runs gunicorn, one Celery worker and Celery beat
until Ctrl-C, when it stops the web server, beat, the worker and the embedded servers in
that order, keeping data in ``var/``.

It supervises what it started: a child that dies is logged with its exit code and
restarted after a back-off (1 s, doubling to 30 s, back to 1 s once a child has run for a
minute), never a reason to stop the rest. Its own death takes every child with it (the
Linux parent-death signal, see ``config.embedded.die_with_parent``). On start it looks
for what a killed earlier run may have left in ``var/``: a run command still holding the
lock, children it recorded that still run, a PostgreSQL or Redis on the data directories,
a process on the port; its own leftovers it stops, anything else it names and refuses to
start beside.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import psutil
from django.core.exceptions import ImproperlyConfigured

from config.embedded import EmbeddedServices, InTheWay, describe_process, die_with_parent, stop_process
from config.env import env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

RESTART_FIRST_DELAY = 1.0
RESTART_MAX_DELAY = 30.0
# A child that ran this long before dying was healthy: its next restart waits RESTART_FIRST_DELAY again.
HEALTHY_AFTER = 60.0
STARTUP_TIMEOUT = 90.0

# The signal each child gets when the launcher dies (and an orphan of an earlier run gets).
# The worker gets SIGKILL: its cold shutdown (SIGQUIT) was seen to hang for more than 30 s
# when Redis and PostgreSQL go at the same moment, and with nobody left to enforce a bound
# it would linger. A task cut off there is in PostgreSQL; the sweep hands it out again.
DEATH_SIGNALS = {
    "web": signal.SIGTERM,
    "beat": signal.SIGTERM,
    "worker": signal.SIGKILL,
    "redis": signal.SIGTERM,
    "postgres": signal.SIGINT,
}
STOP_ORDER = ("web", "beat", "worker", "redis", "postgres")


@dataclass
class Child:
    name: str
    spawn: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    delay: float = RESTART_FIRST_DELAY
    restart_at: float | None = None
    exits: int = 0


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name} (exit code {returncode})"
        except ValueError:
            pass
    return f"exited with code {returncode}"


def log(message: str) -> None:
    print(f"balance360: {message}", file=sys.stderr, flush=True)


class Launcher:
    def __init__(self) -> None:
        self.var_dir = Path(os.environ.get("VAR_DIR", BASE_DIR / "var")).resolve()
        self.port = env_int("PORT", 8000, minimum=1)
        self.host = env_str("HOST", "127.0.0.1")
        self.worker_stop_timeout = env_int("WORKER_STOP_TIMEOUT", 60, minimum=1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.services = EmbeddedServices(self.var_dir)
        self.children: dict[str, Child] = {}
        self.stopping = False
        self.listener: socket.socket | None = None
        self.lock: IO[str] | None = None
        self.record = self.var_dir / "launcher-children.json"

    # --- what an earlier run left -----------------------------------------------------------

    def _lock(self) -> None:
        """One run command per ``var/``: a second one would share the data directories with the first.

        The kernel drops the lock when its holder dies however it dies, so the lock, not the
        file's existence or the pid in it, tells whether a run command is running.
        """
        handle = (self.var_dir / "launcher.pid").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            who = describe_process(int(text)) if text.isdigit() else "another process"
            hint = f"kill -INT {text}" if text.isdigit() else "stop it"
            raise InTheWay(
                f"another run command, {who}, is already running on {self.var_dir}; "
                f"stop it first (Ctrl-C in its terminal, or {hint}) or set VAR_DIR"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.lock = handle

    def _stop_orphans(self) -> None:
        """Stop the children an earlier run command recorded, if they still run; it is gone (we hold the lock).

        A recorded pid counts only with the same start time, so a pid reused by an unrelated
        process is never signalled.
        """
        try:
            recorded = json.loads(self.record.read_text())["children"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        for name in STOP_ORDER:
            entry = recorded.get(name)
            if not entry:
                continue
            try:
                process = psutil.Process(int(entry["pid"]))
                if abs(process.create_time() - float(entry["started"])) > 0.05:
                    continue
                description = describe_process(process.pid)
                log(f"stopping {name} {description}, left running by an earlier run command that was killed")
                process.send_signal(DEATH_SIGNALS[name])
                try:
                    process.wait(timeout=60)
                except psutil.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            except (psutil.Error, ValueError, KeyError, TypeError):
                continue
        self.record.unlink(missing_ok=True)

    def _write_record(self) -> None:
        children = {}
        for name, child in self.children.items():
            if child.process is None:
                continue
            try:
                started = psutil.Process(child.process.pid).create_time()
            except psutil.Error:
                continue
            children[name] = {"pid": child.process.pid, "started": started}
        temporary = self.record.with_suffix(".tmp")
        temporary.write_text(json.dumps({"launcher": os.getpid(), "children": children}))
        temporary.replace(self.record)

    def _listen(self) -> None:
        """Bind the web port here and hand the socket to gunicorn.

        Whatever answers on the port is then the web server this launcher started, and a
        restarted web server finds the same socket (requests wait in its backlog meanwhile).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as error:
            listener.close()
            raise InTheWay(
                f"port {self.port} on {self.host} is in use{self._port_holders()}; stop it or set PORT"
            ) from error
        listener.listen(2048)
        listener.set_inheritable(True)
        self.listener = listener

    def _port_holders(self) -> str:
        # Each process holding the listening socket, not the one psutil.net_connections() picks.
        pids = set()
        for process in psutil.process_iter():
            try:
                if any(
                    connection.status == psutil.CONN_LISTEN and connection.laddr.port == self.port
                    for connection in process.net_connections(kind="tcp")
                ):
                    pids.add(process.pid)
            except psutil.Error:
                continue
        # A server's workers listen on their parent's socket: name the parent.
        roots = []
        for pid in sorted(pids):
            try:
                if psutil.Process(pid).ppid() not in pids:
                    roots.append(pid)
            except psutil.Error:
                continue
        return (" by " + ", ".join(describe_process(pid) for pid in roots)) if roots else ""

    # --- children --------------------------------------------------------------------------

    def _environment(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
        os.environ.setdefault("VAR_DIR", str(self.var_dir))
        os.environ.setdefault("PUBLIC_BASE_URL", self.url)
        os.environ["PORT"] = str(self.port)
        os.environ["PYTHONUNBUFFERED"] = "1"

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=BASE_DIR,
            check=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )

    def _popen(self, name: str, command: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[bytes]:
        # A session of its own: Ctrl-C reaches only the launcher, which then stops the
        # web server first and the worker last, so no task is cut off by the terminal.
        # Spawned from the main thread only: the parent-death signal follows the forking thread.
        return subprocess.Popen(
            command,
            cwd=BASE_DIR,
            start_new_session=True,
            pass_fds=pass_fds,
            preexec_fn=die_with_parent(DEATH_SIGNALS[name]),
        )

    def _web(self) -> subprocess.Popen[bytes]:
        assert self.listener is not None
        fd = self.listener.fileno()
        command = [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "--bind", f"fd://{fd}", "config.wsgi"]
        return self._popen("web", command, pass_fds=(fd,))

    def _worker(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"]
        return self._popen("worker", command)

    def _beat(self) -> subprocess.Popen[bytes]:
        schedule = str(self.var_dir / "celerybeat-schedule")
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--schedule", schedule]
        return self._popen("beat", command)

    def _adopt(self, name: str, spawn: Callable[[], subprocess.Popen[bytes]], process: subprocess.Popen[bytes]) -> None:
        """Supervise an embedded server its own class started (and waited for)."""
        self.children[name] = Child(name, spawn, process=process, started_at=time.monotonic())
        self._write_record()

    def _start(self, name: str, spawn: Callable[[], subprocess.Popen[bytes]]) -> None:
        child = self.children.setdefault(name, Child(name, spawn))
        child.process = spawn()
        child.started_at = time.monotonic()
        self._write_record()

    def _supervise(self) -> None:
        """Restart what died, after its back-off; called every half second from the main thread."""
        now = time.monotonic()
        for child in self.children.values():
            process = child.process
            if self.stopping:
                return
            if child.restart_at is None and process is not None and process.poll() is not None:
                child.exits += 1
                if now - child.started_at >= HEALTHY_AFTER:
                    child.delay = RESTART_FIRST_DELAY
                log(
                    f"{child.name} (pid {process.pid}) {exit_description(process.returncode)}; "
                    f"restarting it in {child.delay:.0f} s"
                )
                child.restart_at = now + child.delay
                child.delay = min(child.delay * 2, RESTART_MAX_DELAY)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                try:
                    self._start(child.name, child.spawn)
                except OSError as error:
                    log(f"{child.name} could not be started: {error}; trying again in {child.delay:.0f} s")
                    child.restart_at = now + child.delay
                    child.delay = min(child.delay * 2, RESTART_MAX_DELAY)
                    continue
                assert child.process is not None
                log(f"{child.name} restarted (pid {child.process.pid})")

    def _wait_until_healthy(self, *, worker: bool = False) -> None:
        """Until ``/healthz`` answers 200 on the socket this launcher handed to its own web
        server; with ``worker``, until a Celery worker answers through the broker as well."""
        path, timeout = ("/healthz?worker=1", 5) if worker else ("/healthz", 2)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and not self.stopping:
            self._supervise()
            try:
                # The worker check pings for up to 3 s: the request waits for it.
                with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        if not self.stopping:
            exits = ", ".join(f"{child.name} {child.exits}" for child in self.children.values() if child.exits)
            what = "the web server and a worker did" if worker else "the web server did"
            raise RuntimeError(
                f"{what} not answer {path} with 200 within {STARTUP_TIMEOUT:.0f} seconds"
                + (f" (exits so far: {exits})" if exits else "")
            )

    def _request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        (self.var_dir / "mail").mkdir(exist_ok=True)
        try:
            self._lock()
            self._stop_orphans()
            self._listen()
            self._environment()
            started = self.services.start()
            if self.services.postgres is not None and self.services.postgres.process is not None:
                self._adopt("postgres", self.services.postgres.spawn, self.services.postgres.process)
            if self.services.redis is not None and self.services.redis.process is not None:
                self._adopt("redis", self.services.redis.spawn, self.services.redis.process)
            for variable, url in started.items():
                where = f": {url}" if variable == "REDIS_URL" else ""
                print(f"Embedded {variable.split('_')[0].lower()} started ({variable} not set){where}.", flush=True)
            self._manage("migrate", "--noinput")
            if self.stopping:  # Ctrl-C during the start: start nothing more
                return 0
            self._start("web", self._web)
            self._start("worker", self._worker)
            self._start("beat", self._beat)
            self._wait_until_healthy()
            if not self.stopping:
                self._manage("demo_seed")
                # "Running" once the worker answers too: the emails and reports are its work.
                self._wait_until_healthy(worker=True)
            if not self.stopping:
                print(
                    f"\nBalance 360 is running at {self.url}/  (API docs: {self.url}/api/docs/)\n"
                    f"Emails are written to {self.var_dir / 'mail'}. Press Ctrl-C to stop.\n",
                    flush=True,
                )
            while not self.stopping:
                self._supervise()
                time.sleep(0.5)
            return 0
        except (RuntimeError, ImproperlyConfigured, subprocess.CalledProcessError) as error:
            log(str(error))
            return 1
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        self.stopping = True
        started_something = bool(self.children)
        steps = {
            "web": [(signal.SIGTERM, 30.0)],
            "beat": [(signal.SIGTERM, 10.0)],
            "worker": [(signal.SIGTERM, float(self.worker_stop_timeout)), (signal.SIGQUIT, 10.0)],
        }
        for name in ("web", "beat", "worker"):
            child = self.children.get(name)
            if child is not None and child.process is not None and child.process.poll() is None:
                bound = f" (its running tasks get {self.worker_stop_timeout} s to finish)" if name == "worker" else ""
                log(f"stopping {name}{bound}")
                stop_process(child.process, steps[name])
        if self.children.keys() & {"redis", "postgres"}:
            log("stopping the embedded servers")
        self.services.stop()
        if self.listener is not None:
            self.listener.close()
        if self.lock is not None:
            self.record.unlink(missing_ok=True)
            self.lock.close()
        if started_something:
            print("Balance 360 stopped; data kept in", self.var_dir, flush=True)


def main() -> int:
    try:
        launcher = Launcher()
    except ImproperlyConfigured as error:  # PORT=eighty: a message, not a traceback
        log(str(error))
        return 1
    return launcher.run()


if __name__ == "__main__":
    sys.exit(main())
