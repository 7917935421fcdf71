"""Worker memory benchmark: the resident memory (RSS) of a real Celery worker's processes
after 50 and after 500 report builds, on the production settings.

Run: ``.venv/bin/python bench/bench_worker_memory.py`` (``--builds 50 500`` and
``--concurrency N`` to change the defaults, ``--max-tasks-per-child N`` to run the worker
with that ``CELERY_WORKER_MAX_TASKS_PER_CHILD``, 0 for none; ``--smoke`` for 3 and 8 builds). Starts
``celery -A config worker`` (prefork, 2 processes as in docker-compose.yml, the production
settings and so the project's Celery configuration) against the embedded PostgreSQL and
Redis this script starts, closes a cycle with answers of as many subjects as the first
count (``bench_reports.cycle_with_answers``: self, manager, 3 peers, 3 direct reports each)
and waits until every report is built, then does the same with a second cycle of the
remaining subjects. After each it prints the RSS of the worker's main process and of each
pool process (the ones that build reports), and at the end how much the pool processes
grew between the two counts and how many were replaced (``worker_max_tasks_per_child``).
Exits with status 1 if a report failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_reports import cycle_with_answers
from bench.common import (
    WORKER_CONCURRENCY,
    bench_django_setup,
    celery_worker_start,
    celery_worker_stop,
    celery_worker_wait_ready,
    production_worker_env,
    timed,
)

MEGABYTE = 1024 * 1024


def reports_build(cycle_id: int, subjects: int, timeout: float) -> tuple[float, int]:
    """Close the cycle's reports through the worker; (seconds until all are done, how many failed)."""
    from django.db import transaction
    from django.db.models import Count

    from reports.models import Report
    from surveys.models import Cycle
    from surveys.signals import cycle_closed

    cycle = Cycle.objects.get(id=cycle_id)
    with timed() as elapsed:
        with transaction.atomic():
            # What cycle_close sends once the answers are unsealed: one report job per subject.
            cycle_closed.send(sender=Cycle, cycle=cycle)
        while True:
            counts = dict(Report.objects.filter(cycle_id=cycle_id).values_list("status").annotate(n=Count("id")))
            if counts.get(Report.Status.READY, 0) + counts.get(Report.Status.FAILED, 0) >= subjects:
                break
            if elapsed() > timeout:
                raise TimeoutError(f"reports not done after {timeout:.0f} s: {counts}")
            time.sleep(0.5)
    return elapsed(), counts.get(Report.Status.FAILED, 0)


def worker_rss(worker_pid: int, concurrency: int) -> tuple[int, dict[int, int]]:
    """RSS of the worker's main process, and of each pool process by pid, in bytes; once the
    pool is whole (a process replaced just now is given a few seconds to be forked)."""
    main = psutil.Process(worker_pid)
    deadline = time.monotonic() + 10
    while True:
        children: dict[int, int] = {}
        for child in main.children(recursive=True):
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    children[child.pid] = child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        if len(children) >= concurrency or time.monotonic() > deadline:
            return main.memory_info().rss, children
        time.sleep(0.2)


def rss_line(builds: int, seconds: float, rss: tuple[int, dict[int, int]]) -> str:
    main, children = rss
    pool = ", ".join(f"{value / MEGABYTE:.0f} MB" for _, value in sorted(children.items()))
    return (
        f"  after {builds:>4} builds ({seconds:6.1f} s): pool processes {pool} "
        f"(total {sum(children.values()) / MEGABYTE:.0f} MB); main process {main / MEGABYTE:.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--builds", type=int, nargs=2, default=[50, 500], metavar=("FIRST", "THEN"))
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY)
    parser.add_argument("--max-tasks-per-child", type=int, help="the worker's CELERY_WORKER_MAX_TASKS_PER_CHILD")
    parser.add_argument("--smoke", action="store_true", help="3 and 8 builds (seconds)")
    arguments = parser.parse_args()
    first, then = (3, 8) if arguments.smoke else arguments.builds
    if not 0 < first < then or then == 2 * first:
        # Two cycles of the same size would share cycle_with_answers' manager name.
        parser.error("--builds needs two counts, the second larger and not twice the first")

    services = bench_django_setup()
    from django.conf import settings

    limit = settings.CELERY_WORKER_MAX_TASKS_PER_CHILD
    extra = {}
    if arguments.max_tasks_per_child is not None:
        extra["CELERY_WORKER_MAX_TASKS_PER_CHILD"] = str(arguments.max_tasks_per_child)
        limit = arguments.max_tasks_per_child or None
    env = production_worker_env(**extra)
    log = Path(env["VAR_DIR"]) / "worker.log"
    worker = celery_worker_start(concurrency=arguments.concurrency, env=env, log=log)
    failed = 0
    try:
        celery_worker_wait_ready(worker)
        cycles = [cycle_with_answers(first), cycle_with_answers(then - first)]
        print(
            f"worker memory: Celery worker (prefork, {arguments.concurrency} processes, production settings, "
            f"worker_max_tasks_per_child={limit}), reports of 8 raters × 30 items"
        )
        figures = [worker_rss(worker.pid, arguments.concurrency)]
        print(rss_line(0, 0.0, figures[0]))
        for cycle_id, builds, subjects in ((cycles[0], first, first), (cycles[1], then, then - first)):
            seconds, failures = reports_build(cycle_id, subjects, timeout=max(120.0, subjects * 10.0))
            failed += failures
            figures.append(worker_rss(worker.pid, arguments.concurrency))
            print(rss_line(builds, seconds, figures[-1]))
        grown = sum(figures[2][1].values()) - sum(figures[1][1].values())
        replaced = len(set(figures[1][1]) - set(figures[2][1]))
        print(
            f"  pool processes from {first} to {then} builds: {grown / MEGABYTE:+.0f} MB in all; "
            f"{len(set(figures[0][1]) - set(figures[2][1]))} of the first {len(figures[0][1])} replaced by the end "
            f"({replaced} of those running after {first} builds)"
        )
        if failed:
            print(f"  problem: {failed} reports failed")
    except Exception as error:
        print(f"worker memory benchmark failed: {type(error).__name__}: {error}")
        print(log.read_text(errors="replace")[-3000:] if log.exists() else "(no worker log)")
        failed = failed or 1
    finally:
        celery_worker_stop(worker)
        services.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
