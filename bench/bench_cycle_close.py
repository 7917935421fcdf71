"""Cycle-close benchmark: from ``cycle_close`` of a launched cycle to every report ready.

Run: ``.venv/bin/python bench/bench_cycle_close.py`` (``--subjects N``; ``--smoke`` for a
few subjects). Builds an open cycle of N subjects, each with the eight answers a survey
stores (self, manager, 3 peers, 3 direct reports), sealed as the survey seals them and
their invitations completed; then calls the real ``cycle_close`` (links die, answers are
unsealed and stored, a report job is queued per subject) and times from that call until
every report is ready — its data computed and its PDF rendered and stored — built by a
real ``celery -A config worker`` (prefork, the production settings, as the run command
starts it) against the embedded PostgreSQL (fsync on) and Redis this script starts in a
temporary directory. The close runs in this process, which sealed the answers.

It runs twice, on two identical cycles: with a worker pool of 1 process, then of 2 (the
run command's pool; ``--pools`` to choose); prints for each the close itself, the time to
all-ready and reports per second, and the scale-out ratio (reports per second with 2
processes / with 1).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_reports import bench_cycle, subject_answers
from bench.common import bench_django_setup, celery_worker_start, celery_worker_stop, celery_worker_wait_ready, timed

SMOKE_SUBJECTS = 4


def open_cycle_with_sealed_answers(subjects: int, *, name: str) -> tuple[int, Any]:
    """A launched cycle of ``subjects`` people, every invitation answered and its answer sealed."""
    from datetime import timedelta

    from django.utils import timezone

    from feedback.models import SealedAnswer
    from feedback.sealing import answer_seal
    from feedback.services import RESPONSE
    from surveys.models import Cycle, Invitation

    generator = random.Random(11)
    now = timezone.now()
    cycle, subject_rows, codes = bench_cycle(
        subjects, name=f"close-{name}", deadline=now + timedelta(days=7), status=Cycle.Status.OPEN, launched_at=now
    )
    invitations = []
    sealed = []
    for subject in subject_rows:
        for index, (group, ratings, texts) in enumerate(subject_answers(generator, codes)):
            invitations.append(
                Invitation(
                    cycle=cycle,
                    subject=subject,
                    group=group,
                    rater_email=f"r{index}-{subject.pk}@close-{name}.bench.test",
                    status=Invitation.Status.COMPLETED,
                )
            )
            payload = {"kind": RESPONSE, "ratings": ratings, "subject": subject.pk, "group": group}
            sealed.append(
                SealedAnswer(
                    cycle=cycle,
                    ciphertext=answer_seal(cycle_id=cycle.pk, payload=payload, texts=texts, item_codes=tuple(codes)),
                )
            )
    Invitation.objects.bulk_create(invitations, batch_size=2000)
    SealedAnswer.objects.bulk_create(sealed, batch_size=200)
    return cycle.pk, cycle.created_by


def close_to_all_ready(cycle_id: int, manager: Any, subjects: int, processes: int) -> tuple[float, float, int]:
    """Seconds inside ``cycle_close``, seconds from its call to every report settled, and
    how many failed."""
    from django.db.models import Count

    from reports.models import Report
    from surveys.models import Cycle
    from surveys.services import cycle_close

    worker = celery_worker_start(concurrency=processes)
    try:
        celery_worker_wait_ready(worker)
        cycle = Cycle.objects.get(pk=cycle_id)
        with timed() as elapsed:
            with timed() as closing:
                cycle_close(cycle=cycle, by=manager)
            close_seconds = closing()
            while True:
                counts = dict(Report.objects.filter(cycle_id=cycle_id).values_list("status").annotate(n=Count("id")))
                if counts.get(Report.Status.READY, 0) + counts.get(Report.Status.FAILED, 0) >= subjects:
                    break
                time.sleep(0.25)
        return close_seconds, elapsed(), counts.get(Report.Status.FAILED, 0)
    finally:
        celery_worker_stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, default=1000)
    parser.add_argument("--pools", default="1,2", help="worker pool sizes to run, one cycle each (default 1,2)")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_SUBJECTS} subjects: checks the path, not speed")
    arguments = parser.parse_args()
    subjects = SMOKE_SUBJECTS if arguments.smoke else arguments.subjects
    pools = [int(size) for size in arguments.pools.split(",")]

    services = bench_django_setup()
    try:
        cycles = {processes: open_cycle_with_sealed_answers(subjects, name=f"{processes}p") for processes in pools}
        rates: dict[int, float] = {}
        failed_total = 0
        for processes, (cycle_id, manager) in cycles.items():
            close_seconds, seconds, failed = close_to_all_ready(cycle_id, manager, subjects, processes)
            failed_total += failed
            rates[processes] = subjects / seconds
            print(
                f"cycle close: {subjects} subjects, worker pool of {processes} process{'es' if processes > 1 else ''}: "
                f"cycle_close {close_seconds:.1f} s, all reports ready {seconds:.1f} s after it was called "
                f"({rates[processes]:.2f} reports/s; target for 1,000 subjects with 2 processes: 300 s)"
            )
        if 1 in rates and 2 in rates:
            print(f"cycle close: scale-out, reports/s with 2 processes / with 1: {rates[2] / rates[1]:.2f}")
        if failed_total:
            print(f"cycle close: {failed_total} reports failed")
            sys.exit(1)
    finally:
        services.stop()


if __name__ == "__main__":
    main()
