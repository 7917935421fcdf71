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

pytestmark = pytest.mark.slow


def test_there_are_benchmarks_to_run() -> None:
    assert len(SCRIPTS) >= 3, SCRIPTS


@pytest.mark.timeout(SMOKE_TIMEOUT + 60)
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.name)
def test_benchmark_runs_with_smoke_sizes_and_prints_figures(script: Path) -> None:
    # The benchmark starts its own PostgreSQL and Redis: the test run's servers (and the
    # settings module) are not handed down, or it would migrate and fill their databases.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    finished = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
    )
    output = finished.stdout
    assert finished.returncode == 0, f"{script.name} exited {finished.returncode}:\n{output}\n{finished.stderr[-3000:]}"
    assert len(FIGURE.findall(output)) >= 2, f"{script.name} printed no figures:\n{output}"
