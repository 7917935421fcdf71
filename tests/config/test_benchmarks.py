"""Every benchmark in bench/ runs with --smoke (tiny sizes) and prints its figures.

The timings themselves are never asserted (they follow the machine); what is asserted is
that each script still runs end to end against its own servers, checks what it checks
(exactly-once delivery, reports built) and exits 0. ``make bench`` runs them at full size.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((BASE_DIR / "bench").glob("bench_*.py"))
SMOKE_TIMEOUT = 300
# A figure: a number with its unit ("0.28 s", "36 emails/s", "578.3 ms", "139 MB", "1.47").
FIGURE = re.compile(r"\d[\d,]*(\.\d+)?\s?(s|ms|MB|KB|/s|[a-z]+/s)\b")

# What each benchmark must print beyond figures: every scenario and ratio it promises.
PRINTS = {
    "bench_web.py": [
        *(
            rf"^  {name} +[0-9.]+ req/s  p50 +[0-9.]+ ms  p99 +[0-9.]+ ms"
            for name in ("hello", "page get", "insert", "sealed insert", "html submit", "api submit")
        ),
        r"ratio page get / hello: [0-9.]+",
        *(
            rf"ratio {name} submit / insert: [0-9.]+ .*, p99 [0-9.]+ ms .*; p99/p50 [0-9.]+, insert's [0-9.]+\)$"
            for name in ("html", "api")
        ),
        # Every batch starts with its connections spread evenly over the two web processes.
        r"connections per web process at the start of each batch: 8 \+ 8$",
    ],
    "bench_cycle_close.py": [
        r"worker pool of 1 process: cycle_close [0-9.]+ s, all reports ready [0-9.]+ s",
        r"worker pool of 2 processes: cycle_close [0-9.]+ s, all reports ready [0-9.]+ s",
        r"scale-out, reports/s with 2 processes / with 1: [0-9.]+",
    ],
    "bench_reports.py": [r"PDF with charts / same report without: median [0-9.]+"],
    "bench_launch.py": [
        r"delivery +[0-9.]+ s = [0-9.]+ emails/s \(target at least 200/s[^)]*\), every email delivered exactly once",
        r"worker processor time [0-9.]+ ms per email",
    ],
    "bench_worker_memory.py": [
        r"after +[0-9]+ builds .*pool processes [0-9]+ MB",
        r"pool processes from [0-9]+ to [0-9]+ builds: [+-]?[0-9]+ MB in all",
    ],
}

pytestmark = pytest.mark.slow


def _bench_environment(tmp_path: Path) -> dict[str, str]:
    # The benchmark starts its own PostgreSQL and Redis: the test run's servers (and the
    # settings module) are not handed down, or it would migrate and fill their databases.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    # Its temporary files go where the test can see what it leaves behind.
    env["TMPDIR"] = str(tmp_path)
    return env


def test_every_benchmark_says_what_it_must_print() -> None:
    assert {script.name for script in SCRIPTS} == set(PRINTS)


@pytest.mark.timeout(SMOKE_TIMEOUT + 60)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_benchmark_runs_with_smoke_sizes_and_prints_figures(script: Path, tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=BASE_DIR,
        env=_bench_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    output = finished.stdout
    assert finished.returncode == 0, f"{script.name} exited {finished.returncode}:\n{output}\n{finished.stderr[-3000:]}"
    assert len(FIGURE.findall(output)) >= 2, f"{script.name} printed no figures:\n{output}"
    for pattern in PRINTS.get(script.name, []):
        assert re.search(pattern, output, re.M), f"{script.name} did not print {pattern!r}:\n{output}"
    assert not list(tmp_path.iterdir()), f"{script.name} left its temporary files behind"
    # Its own server writes as production does: no warning that it measures less.
    assert "WARNING: PostgreSQL runs with" not in finished.stderr


@pytest.mark.django_db
def test_a_benchmark_says_when_its_database_writes_less_than_production(capsys: pytest.CaptureFixture[str]) -> None:
    from django.db import connection

    from bench.common import durability_check

    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
    durability_check()
    assert "synchronous_commit=off" in capsys.readouterr().err
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = on")
    durability_check()
    assert "synchronous_commit" not in capsys.readouterr().err


@pytest.mark.timeout(SMOKE_TIMEOUT + 60)
def test_a_web_benchmark_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """Seen to fail with the stack started without a parent-death signal: gunicorn and the
    Celery worker stayed up after the SIGKILL, retrying a Redis that had gone."""
    import signal
    import time

    import psutil

    bench = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "bench" / "bench_web.py"), "--smoke"],
        cwd=BASE_DIR,
        env=_bench_environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[psutil.Process] = []
    try:
        # given: the benchmark's whole stack is up (its web server and its worker among them)
        deadline = time.monotonic() + SMOKE_TIMEOUT
        while time.monotonic() < deadline and bench.poll() is None:
            started = psutil.Process(bench.pid).children(recursive=True)
            names = " ".join(" ".join(process.cmdline()) for process in started if process.is_running())
            if "gunicorn" in names and "celery" in names:
                break
            time.sleep(0.2)
        assert bench.poll() is None, "the benchmark ended before its stack was up"
        time.sleep(1)  # the worker's pool processes too
        started = psutil.Process(bench.pid).children(recursive=True)
        # when
        bench.send_signal(signal.SIGKILL)
        bench.wait()
        # then: every process it started ends by itself
        _, alive = psutil.wait_procs(started, timeout=30)
        assert [" ".join(process.cmdline()) for process in alive if process.is_running()] == []
    finally:
        if bench.poll() is None:
            bench.kill()
        for process in started:
            if process.is_running():
                process.kill()
