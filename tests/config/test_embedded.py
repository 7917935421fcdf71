"""The embedded Redis of the run command really persists, and the embedded servers die with their parent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from config.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, local_ports

BASE_DIR = Path(__file__).resolve().parents[2]


def test_embedded_redis_applies_its_persistence_flags_and_keeps_a_write_across_a_sigkill(tmp_path: Path) -> None:
    """Seen to fail with the former ``["--save", "60 1"]``: ``CONFIG GET save`` answered "", appendonly "no"."""
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    try:
        client = redis.Redis.from_url(url, socket_timeout=5)
        config = {key: client.config_get(key)[key] for key in ("appendonly", "appendfsync", "maxmemory-policy", "dir")}
        assert config == {
            "appendonly": "yes",
            "appendfsync": "everysec",
            "maxmemory-policy": "noeviction",
            "dir": str(tmp_path / "redis"),
        }
        # when: a write, then the server killed without a chance to save once fsync has run
        client.set("doorbell", "rung")
        time.sleep(1.5)  # appendfsync everysec: on disk within a second
        assert server.process is not None
        server.process.kill()
        server.process.wait(timeout=10)
        # then: the restarted server (same port, same directory) still has it
        server.spawn()
        server.wait_until_ready()
        assert redis.Redis.from_url(url, socket_timeout=5).get("doorbell") == b"rung"
    finally:
        server.stop()


def test_ephemeral_redis_keeps_nothing(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", ephemeral=True)
    client = redis.Redis.from_url(server.start(), socket_timeout=5)
    try:
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    finally:
        server.stop()


def test_postgres_with_a_data_path_too_long_for_a_socket_name_leaves_no_socket_directory_behind(tmp_path: Path) -> None:
    """Seen to fail before ``stop`` removed it: the hashed directory stayed in the temporary directory."""
    # A Unix socket's name holds about 107 bytes; this data directory's own is longer.
    data_dir = tmp_path / ("deep-" * 24) / "postgres"
    server = EmbeddedPostgres(data_dir, ephemeral=True)
    url = server.start()
    try:
        socket_dir = server._socket_dir
        assert socket_dir is not None and socket_dir != data_dir
        assert (socket_dir / ".s.PGSQL.5432").is_socket()
        assert "deep-" not in url  # the URL names the short directory
    finally:
        server.stop()
    assert not socket_dir.exists()
    assert (data_dir / "PG_VERSION").is_file()  # the data itself stays


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_embedded_servers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    """Seen to fail with ``die_with_parent`` returning None: PostgreSQL and Redis stayed up after the SIGKILL."""
    # given: a process that started both embedded servers
    script = (
        "import sys, time; from pathlib import Path; from config.embedded import EmbeddedServices; "
        f"EmbeddedServices(Path({str(tmp_path)!r})).start(); print('started', flush=True); time.sleep(120)"
    )
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, text=True)
    servers: list[psutil.Process] = []
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "started"  # bounded by the suite's timeout
        servers = psutil.Process(parent.pid).children()
        assert sorted(server.name() for server in servers) == ["postgres", "redis-server"]
        # when: it is killed without a chance to stop them
        parent.kill()
        parent.wait(timeout=10)
        # then: they go too
        _, alive = psutil.wait_procs(servers, timeout=30)
        assert alive == []
    finally:
        parent.kill()
        for server in servers:
            if server.is_running():
                server.kill()


def test_a_free_port_is_drawn_from_local_ports_and_skips_the_ones_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    # given: ten consecutive free ports, the first nine then held by listeners
    monkeypatch.delenv("LOCAL_PORTS", raising=False)
    window = _free_window(10)
    listeners = [socket.socket() for _ in window[:9]]
    try:
        for listener, port in zip(listeners, window, strict=False):
            listener.bind(("127.0.0.1", port))
            listener.listen()
        monkeypatch.setenv("LOCAL_PORTS", f"{window[0]}-{window[-1]}")
        # when/then: every draw is the one port of the range nothing holds
        assert {free_port() for _ in range(20)} == {window[-1]}
    finally:
        for listener in listeners:
            listener.close()


def _free_window(size: int) -> list[int]:
    """``size`` consecutive ports of the default range that nothing holds now."""
    low, high = local_ports()
    for first in range(low, high - size, size):
        window = list(range(first, first + size))
        probes = [socket.socket() for _ in window]
        try:
            for probe, port in zip(probes, window, strict=True):
                probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return window
    raise AssertionError("no ten consecutive free ports")


def test_by_default_a_free_port_lies_below_the_kernels_ports_for_outgoing_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seen to fail with the former port 0 asked of the kernel: 44,000s and 50,000s here."""
    monkeypatch.delenv("LOCAL_PORTS", raising=False)
    outgoing_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    drawn = [free_port() for _ in range(50)]
    assert all(20000 <= port < outgoing_from for port in drawn), drawn


@pytest.mark.parametrize("value", ["8000", "30000-20000", "80-90", "a-b", "20000-70000"])
def test_a_mistyped_local_ports_is_refused_with_its_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LOCAL_PORTS", value)
    with pytest.raises(ValueError, match="LOCAL_PORTS"):
        free_port()
