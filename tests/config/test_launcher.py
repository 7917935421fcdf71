"""The run command's restart back-off, without processes (tests/config/test_run_command.py runs real ones)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from config import launcher as launcher_module
from config.launcher import Launcher, exit_description


class DyingProcess:
    """A child that has already exited with ``returncode``."""

    def __init__(self, pid: int, returncode: int) -> None:
        self.pid = pid
        self.returncode = returncode

    def poll(self) -> int:
        return self.returncode


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    # Only the launcher's clock: the rest of the process keeps the real one.
    monkeypatch.setattr(launcher_module, "time", SimpleNamespace(monotonic=clock, sleep=time.sleep))
    return clock


def _launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Launcher:
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    return Launcher()


def test_a_child_that_keeps_dying_waits_1_2_4_up_to_30_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher = _launcher(tmp_path, monkeypatch)
    spawned: list[Any] = []

    def spawn() -> Any:
        spawned.append(DyingProcess(pid=100 + len(spawned), returncode=1))
        return spawned[-1]

    launcher._start("worker", spawn)
    waits = []
    for _ in range(7):
        launcher._supervise()  # sees the exit, schedules the restart
        child = launcher.children["worker"]
        assert child.restart_at is not None
        waits.append(child.restart_at - clock.now)
        clock.now = child.restart_at
        launcher._supervise()  # restarts it
        clock.now += 0.5  # and it dies again at once
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    assert len(spawned) == 8
    err = capsys.readouterr().err
    assert "worker (pid 100) exited with code 1; restarting it in 1 s" in err
    assert "worker restarted (pid 101)" in err


def test_a_minute_of_health_resets_the_back_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    launcher = _launcher(tmp_path, monkeypatch)
    launcher._start("web", lambda: DyingProcess(pid=7, returncode=-9))
    child = launcher.children["web"]
    child.delay = 16.0  # after a bad spell
    clock.now = child.started_at + 61
    launcher._supervise()
    assert child.restart_at == clock.now + 1


def test_nothing_is_restarted_once_stopping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    launcher = _launcher(tmp_path, monkeypatch)
    launcher._start("beat", lambda: DyingProcess(pid=8, returncode=0))
    launcher.stopping = True
    launcher._supervise()
    assert launcher.children["beat"].restart_at is None


def test_exit_descriptions_name_the_signal() -> None:
    assert exit_description(-9) == "was killed by SIGKILL (exit code -9)"
    assert exit_description(1) == "exited with code 1"
