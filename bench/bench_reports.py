"""Report benchmark: data computation and PDF rendering per report, and a 1,000-subject cycle end to end.

Run: ``.venv/bin/python bench/bench_reports.py`` (``--subjects N`` and ``--concurrency N``
to change the defaults; ``--smoke`` for 6 subjects and 3 sampled reports, in seconds).
Prints the median and 95th percentile of computing one report's data (its queries
included) and of rendering its PDF, and of the ratio between rendering a report's PDF and
rendering the same report with its charts removed (what the charts cost; the target is at
most 1.3), then closes a cycle of 1,000 subjects (8 answers each) and measures the time
until every report is ready, built by a real Celery worker pool (``celery -A config
worker`` subprocesses) against the embedded PostgreSQL and Redis this script starts in a
temporary directory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django_setup, celery_worker_start, celery_worker_stop, celery_worker_wait_ready, timed

SAMPLES = 30
SMOKE_SUBJECTS, SMOKE_SAMPLES = 6, 3


def percentile_95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def cycle_with_answers(subjects: int) -> int:
    """A closed cycle of ``subjects`` people, each rated by self, manager, 3 peers, 3 direct reports."""
    import random

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from feedback.models import Response
    from surveys.models import Cycle, Group, Person, Questionnaire, Subject, Team

    generator = random.Random(7)
    manager = get_user_model().objects.create_user(username=f"bench-reports-{subjects}")
    team = Team.objects.create(name="Bench reports", manager=manager)
    questionnaire = Questionnaire.objects.get(name="Kotter balance", version=1)
    codes = list(questionnaire.dimensions.values_list("items__code", flat=True))
    cycle = Cycle.objects.create(
        team=team,
        name=f"Bench {subjects}",
        created_by=manager,
        questionnaire=questionnaire,
        deadline=timezone.now(),
        status=Cycle.Status.CLOSED,
        closed_at=timezone.now(),
    )
    people = Person.objects.bulk_create(
        [Person(team=team, name=f"Person {n}", email=f"p{n}@bench.test") for n in range(subjects)]
    )
    subject_rows = Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people])
    groups = [Group.SELF, Group.MANAGER, *[Group.PEER] * 3, *[Group.DIRECT_REPORT] * 3]
    responses = []
    for subject in subject_rows:
        level = generator.randint(2, 4)
        for group in groups:
            ratings = {
                code: None if generator.random() < 0.05 else max(1, min(5, level + generator.randint(-1, 1)))
                for code in codes
            }
            comments = {"keep_doing": "Keeps the weekly plan visible."} if generator.random() < 0.5 else {}
            responses.append(Response(cycle=cycle, subject=subject, group=group, ratings=ratings, comments=comments))
    Response.objects.bulk_create(responses, batch_size=2000)
    return cycle.id


def per_report_timings(
    cycle_id: int, samples: int = SAMPLES
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per report: data computation, PDF rendering, and the PDF's processor time with and
    without its charts (processor time, so that other work on the machine does not tilt
    the ratio)."""
    from reports.models import Report
    from reports.rendering import report_pdf_render
    from reports.services import report_data_compute
    from surveys.models import Subject

    compute: list[float] = []
    render: list[float] = []
    full_cpu: list[float] = []
    bare_cpu: list[float] = []
    subjects = list(Subject.objects.filter(cycle_id=cycle_id).order_by("id")[:samples])
    report_pdf_render(data=report_data_compute(report_id=_report_for(subjects[0]).id))  # fonts loaded once
    for subject in subjects:
        report = _report_for(subject)
        with timed() as elapsed:
            data = report_data_compute(report_id=report.id)
        compute.append(elapsed())
        started = time.process_time()
        with timed() as elapsed:
            report_pdf_render(data=data)
        render.append(elapsed())
        full_cpu.append(time.process_time() - started)
        started = time.process_time()
        report_pdf_render(data=data, with_charts=False)
        bare_cpu.append(time.process_time() - started)
    Report.objects.filter(cycle_id=cycle_id).delete()
    return compute, render, full_cpu, bare_cpu


def _report_for(subject: Any) -> Any:
    from reports.models import Report

    report, _ = Report.objects.get_or_create(cycle_id=subject.cycle_id, subject=subject)
    return report


def worker_start(concurrency: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", "LOG_LEVEL": "WARNING"}
    return celery_worker_start(concurrency=concurrency, env=env)


def end_to_end(cycle_id: int, subjects: int, concurrency: int) -> float:
    from django.db import transaction
    from django.db.models import Count

    from reports.models import Report
    from surveys.models import Cycle
    from surveys.signals import cycle_closed

    worker = worker_start(concurrency)
    try:
        celery_worker_wait_ready(worker)
        cycle = Cycle.objects.get(id=cycle_id)
        with timed() as elapsed:
            with transaction.atomic():
                cycle_closed.send(sender=Cycle, cycle=cycle)
            while True:
                counts = dict(Report.objects.filter(cycle_id=cycle_id).values_list("status").annotate(n=Count("id")))
                done = counts.get(Report.Status.READY, 0) + counts.get(Report.Status.FAILED, 0)
                if done >= subjects:
                    break
                time.sleep(0.5)
        failed = counts.get(Report.Status.FAILED, 0)
        if failed:
            print(f"  warning: {failed} reports failed")
        return elapsed()
    finally:
        celery_worker_stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SUBJECTS} subjects, {SMOKE_SAMPLES} samples")
    arguments = parser.parse_args()
    if arguments.smoke:
        arguments.subjects = SMOKE_SUBJECTS

    services = bench_django_setup()
    try:
        cycle_id = cycle_with_answers(arguments.subjects)
        compute, render, full_cpu, bare_cpu = per_report_timings(
            cycle_id, SMOKE_SAMPLES if arguments.smoke else SAMPLES
        )
        print(f"reports: per report over {len(compute)} reports (8 raters, 30 items)")
        print(
            f"  data computation (queries included): median {statistics.median(compute) * 1000:.1f} ms, "
            f"p95 {percentile_95(compute) * 1000:.1f} ms"
        )
        print(
            f"  PDF rendering:                       median {statistics.median(render) * 1000:.1f} ms, "
            f"p95 {percentile_95(render) * 1000:.1f} ms"
        )
        ratios = [full / bare for full, bare in zip(full_cpu, bare_cpu, strict=True)]
        print(
            f"  PDF with charts / same report without: median {statistics.median(ratios):.2f}, "
            f"p95 {percentile_95(ratios):.2f} (processor time; target at most 1.3)"
        )
        seconds = end_to_end(cycle_id, arguments.subjects, arguments.concurrency)
        print(
            f"reports: closed cycle of {arguments.subjects} subjects all ready in {seconds:.1f} s "
            f"({arguments.subjects / seconds:.1f} reports/s, worker pool of {arguments.concurrency} processes)"
        )
    finally:
        services.stop()


if __name__ == "__main__":
    main()
