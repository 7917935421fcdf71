"""The web benchmark runs end to end at tiny sizes (``--smoke``), and its reference views stay out of production."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SCENARIOS = ("hello", "page get", "insert", "html submit", "api submit")


@pytest.mark.slow
def test_the_web_benchmark_smoke_run_exits_0_and_prints_its_figures() -> None:
    # Its own embedded PostgreSQL and Redis, not the test run's: the benchmark migrates and writes.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")
    }
    run = subprocess.run(
        [sys.executable, "bench/bench_web.py", "--smoke"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for name in SCENARIOS:
        assert re.search(rf"^  {name} +[0-9.]+ req/s  p50 +[0-9.]+ ms  p99 +[0-9.]+ ms", run.stdout, re.M), run.stdout
    for name, reference in (("page get", "hello"), ("html submit", "insert"), ("api submit", "insert")):
        assert re.search(rf"ratio {name} / {reference}: [0-9.]+", run.stdout), run.stdout


@pytest.mark.parametrize("path", ["/bench/hello/", "/bench/insert/"])
def test_the_benchmark_views_are_not_in_the_project_urls(path: str) -> None:
    with pytest.raises(Resolver404):
        resolve(path, urlconf="config.urls")
    assert resolve(path, urlconf="bench.urls")
