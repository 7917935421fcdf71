"""Launch benchmark: the launch of subjects × 10 raters, then every invitation email delivered
once through a real Celery worker to a local SMTP server, on durable PostgreSQL.

Run: ``.venv/bin/python bench/bench_launch.py`` (``--subjects N [N …]``, ``--concurrency N``;
``--smoke`` for tiny sizes that take seconds). For each size, on the embedded PostgreSQL
(fsync, synchronous commit and full-page writes on) and Redis this script starts:

- **launch**: with the people already in the team, the time of ``cycle_create``,
  ``raters_bulk_add`` (10 raters per subject: self, their lead, 5 teammates, 3 outside
  raters) and ``cycle_launch`` (every invitation opened, one email recorded per rater, the
  doorbells rung), and of ``cycle_launch`` alone;
- **delivery**: from the launch's commit until every recorded email is handed to the SMTP
  server and marked sent by a Celery worker (``celery -A config worker``, prefork,
  ``--concurrency`` processes, the production settings) — each email's survey links created
  and its body composed as it is sent — and the emails per second that makes (target at
  least 200/s), and the worker's processor time per email;
- **exactly once**: every rater received one email, none was lost or sent twice (the SMTP
  server keeps on listening for doubles after the last email), and the emails hold one survey
  link per invitation. Any miss prints what went wrong and exits with status 1.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    WORKER_CONCURRENCY,
    bench_django_setup,
    celery_worker_start,
    celery_worker_stop,
    celery_worker_wait_ready,
    production_worker_env,
    timed,
)

RATERS_PER_SUBJECT = 10
TEAM_SIZE = 10  # subjects per lead
OUTSIDE_POOL_RATIO = 0.5  # outside raters drawn from a pool of half as many addresses as subjects
DELIVERY_TARGET = 200  # emails per second
# After the last email: how long the SMTP server keeps listening for one sent twice.
DOUBLES_WAIT_SECONDS = 3.0
SURVEY_LINK = re.compile(r"https?://[^\s/]+/s/[A-Za-z0-9_\-]{43}/")


@dataclass
class Launch:
    cycle_id: int
    seconds: float
    launch_seconds: float
    invitations: int
    emails: int
    invitations_by_rater: Counter[str]
    # perf_counter() when the launch had committed and rung: where delivery starts.
    launched: float


def launch(subjects: int, label: str) -> Launch:
    """People first (they exist before any review), then the timed launch."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from surveys import services
    from surveys.models import Group, Invitation, OutboundEmail, Person, Team

    manager = get_user_model().objects.create_user(username=f"bench-{label}")
    team = Team.objects.create(name=f"Bench {label}", manager=manager)
    leads = Person.objects.bulk_create(
        [
            Person(team=team, name=f"Lead {n}", email=f"lead{n}-{label}@bench.test")
            for n in range(-(-subjects // TEAM_SIZE))
        ]
    )
    people = Person.objects.bulk_create(
        [
            Person(team=team, name=f"Person {n}", email=f"p{n}-{label}@bench.test", reports_to=leads[n // TEAM_SIZE])
            for n in range(subjects)
        ]
    )
    pool = max(1, int(subjects * OUTSIDE_POOL_RATIO))
    with timed() as elapsed:
        with transaction.atomic():
            cycle = services.cycle_create(
                team=team,
                by=manager,
                name=f"Bench {label}",
                deadline=timezone.now() + timedelta(days=14),
                people=people,
                default_raters=False,
            )
            subjects_by_person = {subject.person_id: subject for subject in cycle.subjects.all()}
            raters = []
            for index, person in enumerate(people):
                subject = subjects_by_person[person.pk]
                lead = leads[index // TEAM_SIZE]
                raters.append(services.RaterSpec(subject=subject, group=Group.SELF, email=person.email, person=person))
                raters.append(services.RaterSpec(subject=subject, group=Group.MANAGER, email=lead.email, person=lead))
                for step in range(1, 6):
                    peer = people[(index + step) % len(people)]
                    raters.append(services.RaterSpec(subject=subject, group=Group.PEER, email=peer.email, person=peer))
                for step in range(3):
                    address = f"outside{(index * 3 + step) % pool}-{label}@partner.test"
                    raters.append(services.RaterSpec(subject=subject, group=Group.OUTSIDE, email=address))
            invitations = services.raters_bulk_add(cycle=cycle, raters=raters)
        with timed() as launch_elapsed:
            services.cycle_launch(cycle=cycle, by=manager)
        launched = time.perf_counter()
    emails = OutboundEmail.objects.filter(cycle=cycle).count()
    by_rater = Counter(
        Invitation.objects.filter(cycle=cycle, status=Invitation.Status.OPEN).values_list("rater_email", flat=True)
    )
    return Launch(cycle.pk, elapsed(), launch_elapsed(), invitations, emails, by_rater, launched)


def delivery_wait(result: Launch, inbox: Any, before: int, timeout: float) -> float:
    """Seconds from the launch until every email of the cycle is out of the queue and at the SMTP server."""
    from surveys.models import OutboundEmail

    settled = [OutboundEmail.Status.SENT, OutboundEmail.Status.FAILED, OutboundEmail.Status.SKIPPED]
    while True:
        done = OutboundEmail.objects.filter(cycle_id=result.cycle_id, status__in=settled).count()
        now = time.perf_counter()
        if done >= result.emails and inbox.count() - before >= done:
            return now - result.launched
        if now - result.launched > timeout:
            raise TimeoutError(f"{done} of {result.emails} emails settled after {timeout:.0f} s")
        time.sleep(0.05)


def exactly_once_problems(result: Launch, inbox: Any, before: int) -> list[str]:
    """What went wrong with the cycle's emails: lost, doubled, failed, or missing links."""
    from surveys.models import OutboundEmail

    problems = []
    statuses = Counter(OutboundEmail.objects.filter(cycle_id=result.cycle_id).values_list("status", flat=True))
    if set(statuses) != {OutboundEmail.Status.SENT}:
        problems.append(f"emails not all sent: {dict(statuses)}")
    messages = inbox.messages[before:]
    delivered = Counter(recipient for recipients, _ in messages for recipient in recipients)
    expected = set(result.invitations_by_rater)
    lost = expected - set(delivered)
    doubled = {recipient: count for recipient, count in delivered.items() if count > 1}
    strangers = set(delivered) - expected
    if lost:
        problems.append(f"{len(lost)} raters got no email, e.g. {sorted(lost)[:3]}")
    if doubled:
        problems.append(f"{len(doubled)} raters got more than one email, e.g. {sorted(doubled.items())[:3]}")
    if strangers:
        problems.append(f"{len(strangers)} emails to addresses not invited, e.g. {sorted(strangers)[:3]}")
    wrong_links = 0
    for recipients, message in messages:
        text = message.get_body(preferencelist=("plain",))
        links = set(SURVEY_LINK.findall(text.get_content() if text else ""))
        if len(links) != result.invitations_by_rater.get(recipients[0], -1):
            wrong_links += 1
    if wrong_links:
        problems.append(f"{wrong_links} emails without one link per invitation of their rater")
    return problems


def worker_cpu_seconds(worker_pid: int) -> float:
    """Processor time (user + system) the worker's main and pool processes have used so far."""
    import psutil

    main = psutil.Process(worker_pid)
    total = 0.0
    for process in [main, *main.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subjects", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--concurrency", type=int, default=WORKER_CONCURRENCY)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), exactly-once still checked")
    arguments = parser.parse_args()
    sizes = [6] if arguments.smoke else arguments.subjects

    services = bench_django_setup()
    from tests.smtp_sink import Inbox, smtp_sink_start

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    inbox = Inbox()
    sink = smtp_sink_start(inbox)
    env = production_worker_env(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(sink.port), EMAIL_TIMEOUT="10")
    log = Path(env["VAR_DIR"]) / "worker.log"
    worker = celery_worker_start(concurrency=arguments.concurrency, env=env, log=log)
    failed = False
    try:
        celery_worker_wait_ready(worker)
        # Once per process, not per launch: the first doorbell loads the task modules and
        # connects to the broker (about 0.2 s), which the first launch would otherwise carry.
        from config.jobs import jobs_ring
        from surveys.models import EMAILS

        jobs_ring(EMAILS)
        print(
            f"launch: subjects × {RATERS_PER_SUBJECT} raters, then every email through a Celery worker "
            f"(prefork, {arguments.concurrency} processes, production settings) to a local SMTP server; "
            "durable PostgreSQL"
        )
        for subjects in sizes:
            before = inbox.count()
            cpu_before = worker_cpu_seconds(worker.pid)
            result = launch(subjects, f"{subjects}-{time.monotonic_ns()}")
            seconds = delivery_wait(result, inbox, before, timeout=max(60.0, result.emails / 10))
            cpu = worker_cpu_seconds(worker.pid) - cpu_before
            time.sleep(DOUBLES_WAIT_SECONDS)
            problems = exactly_once_problems(result, inbox, before)
            rate = result.emails / seconds
            print(
                f"  {subjects:>5} subjects: launch {result.seconds:6.2f} s "
                f"(cycle_launch {result.launch_seconds:.2f} s; {result.invitations} invitations, "
                f"{result.emails} emails recorded)"
            )
            print(
                f"  {subjects:>5} subjects: delivery {seconds:6.2f} s = {rate:,.0f} emails/s "
                f"(target at least {DELIVERY_TARGET}/s{'' if rate >= DELIVERY_TARGET else ': MISSED'}), "
                f"{'every email delivered exactly once' if not problems else 'NOT exactly once'}"
            )
            print(
                f"  {subjects:>5} subjects: worker processor time {cpu * 1000 / result.emails:.1f} ms per email "
                "(user + system, all its processes; less bound to the load of the machine than the rate)"
            )
            for problem in problems:
                print(f"    problem: {problem}")
            failed = failed or bool(problems)
    except Exception as error:
        print(f"launch benchmark failed: {type(error).__name__}: {error}")
        print(log.read_text(errors="replace")[-3000:] if log.exists() else "(no worker log)")
        failed = True
    finally:
        celery_worker_stop(worker)
        sink.stop()
        services.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
