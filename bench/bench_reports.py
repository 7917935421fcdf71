"""Report benchmark: per report, computing its data and rendering its PDF, and what the charts cost.

Run: ``.venv/bin/python bench/bench_reports.py`` (``--subjects N`` for the size of the
cycle the reports are sampled from; ``--smoke`` for 6 subjects and 3 sampled reports, in
seconds). On the embedded PostgreSQL and Redis this script starts, builds a closed cycle
(self, manager, 3 peers and 3 direct reports answering each subject) and, for 30 of its
reports, prints the median and 95th percentile of:

* computing the report's data from the stored answers (its queries included);
* rendering its PDF (wall clock, the first render of that report, as a worker renders it);
* the ratio of the PDF's processor time to the same report's rendered with its charts
  removed (target at most 1.3). Each of the two renders is timed after a garbage
  collection, so that neither pays for the other's garbage, and the first of the pair
  alternates, so that neither always meets the text of the report first.

A closed cycle through the worker pool is ``bench/bench_cycle_close.py``.
"""

from __future__ import annotations

import argparse
import gc
import random
import secrets
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django_setup, timed

SAMPLES = 30
SMOKE_SUBJECTS, SMOKE_SAMPLES = 6, 3


def percentile_95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


# Who answers about each subject in the benchmarks' cycles.
RATER_GROUPS = ("self", "manager", "peer", "peer", "peer", "direct_report", "direct_report", "direct_report")


def bench_cycle(subjects: int, *, name: str, **fields: Any) -> tuple[Any, list[Any], list[str]]:
    """A cycle of ``subjects`` people on the Kotter questionnaire (``fields`` set its status
    and times): (cycle, its subjects, the questionnaire's item codes)."""
    from django.contrib.auth import get_user_model

    from surveys.models import Cycle, Person, Questionnaire, Subject, Team

    manager = get_user_model().objects.create_user(username=f"bench-{name}")
    team = Team.objects.create(name=f"Bench {name}", manager=manager)
    questionnaire = Questionnaire.objects.get(name="Kotter balance", version=1)
    codes = list(questionnaire.dimensions.values_list("items__code", flat=True))
    cycle = Cycle.objects.create(
        team=team, name=f"Bench {name}", created_by=manager, questionnaire=questionnaire, **fields
    )
    people = Person.objects.bulk_create(
        [Person(team=team, name=f"Person {n}", email=f"p{n}@{name}.bench.test") for n in range(subjects)]
    )
    return cycle, Subject.objects.bulk_create([Subject(cycle=cycle, person=person) for person in people]), codes


def subject_answers(generator: random.Random, codes: list[str]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(group, ratings, comments) of each rater of one subject: around one level drawn for the
    subject, one rating in twenty "can't say", a comment from every other rater."""
    level = generator.randint(2, 4)
    for group in RATER_GROUPS:
        ratings = {
            code: None if generator.random() < 0.05 else max(1, min(5, level + generator.randint(-1, 1)))
            for code in codes
        }
        comments = {"keep_doing": "Keeps the weekly plan visible."} if generator.random() < 0.5 else {}
        yield group, ratings, comments


def cycle_with_answers(subjects: int) -> int:
    """A closed cycle of ``subjects`` people, each rated by self, manager, 3 peers, 3 direct reports."""
    from django.utils import timezone

    from feedback.models import Response
    from surveys.models import Cycle

    generator = random.Random(7)
    now = timezone.now()
    cycle, subject_rows, codes = bench_cycle(
        subjects,
        name=f"reports-{subjects}-{secrets.token_hex(3)}",
        deadline=now,
        status=Cycle.Status.CLOSED,
        closed_at=now,
    )
    responses = [
        Response(cycle=cycle, subject=subject, group=group, ratings=ratings, comments=comments)
        for subject in subject_rows
        for group, ratings, comments in subject_answers(generator, codes)
    ]
    Response.objects.bulk_create(responses, batch_size=2000)
    return cycle.id


def per_report_timings(
    cycle_id: int, samples: int = SAMPLES
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per report: data computation, PDF rendering, and the PDF's processor time with and
    without its charts (processor time, so that other work on the machine tilts the ratio
    less)."""
    from reports.models import Report
    from reports.rendering import report_pdf_render
    from reports.services import report_data_compute
    from surveys.models import Subject

    compute: list[float] = []
    render: list[float] = []
    full_cpu: list[float] = []
    bare_cpu: list[float] = []

    def processor_time(data: Any, *, with_charts: bool) -> float:
        gc.collect()
        started = time.process_time()
        report_pdf_render(data=data, with_charts=with_charts)
        return time.process_time() - started

    ordered = list(Subject.objects.filter(cycle_id=cycle_id).order_by("id"))
    if len(ordered) <= samples:
        raise ValueError(f"a cycle of more than {samples} subjects is needed: one warms the renderer up")
    subjects = ordered[:samples]
    # Fonts and stylesheets loaded once, on a report that is not sampled: each sampled PDF
    # is then its report's first render, as in a worker.
    report_pdf_render(data=report_data_compute(report_id=_report_for(ordered[-1]).id))
    for index, subject in enumerate(subjects):
        report = _report_for(subject)
        with timed() as elapsed:
            data = report_data_compute(report_id=report.id)
        compute.append(elapsed())
        gc.collect()
        with timed() as elapsed:
            report_pdf_render(data=data)
        render.append(elapsed())
        if index % 2:
            bare_cpu.append(processor_time(data, with_charts=False))
            full_cpu.append(processor_time(data, with_charts=True))
        else:
            full_cpu.append(processor_time(data, with_charts=True))
            bare_cpu.append(processor_time(data, with_charts=False))
    Report.objects.filter(cycle_id=cycle_id).delete()
    return compute, render, full_cpu, bare_cpu


def _report_for(subject: Any) -> Any:
    from reports.models import Report

    report, _ = Report.objects.get_or_create(cycle_id=subject.cycle_id, subject=subject)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=100)
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
    finally:
        services.stop()


if __name__ == "__main__":
    main()
