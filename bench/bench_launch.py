"""Launch benchmark: subjects × 10 raters, and the sender's emails per second.

Run: ``.venv/bin/python bench/bench_launch.py``. Prints, for 100 and 1,000 subjects with
10 raters each, the time to create the subjects, assign the raters and launch (open every
invitation, record one email per rater), then the throughput of the email sender against a
local SMTP server (aiosmtpd on 127.0.0.1).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_django_setup, timed

RATERS_PER_SUBJECT = 10
OUTSIDE_POOL_RATIO = 0.5  # outside raters drawn from a pool of half as many addresses as subjects


def launch_benchmark(subjects: int) -> tuple[int, float, int, int]:
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from surveys import services
    from surveys.models import Group, OutboundEmail, Person, Team

    manager = get_user_model().objects.create_user(username=f"bench-{subjects}")
    team = Team.objects.create(name=f"Bench {subjects}", manager=manager)
    lead = Person.objects.create(team=team, name="Lead", email=f"lead-{subjects}@bench.test")
    people = Person.objects.bulk_create(
        [
            Person(team=team, name=f"Person {n}", email=f"p{n}-{subjects}@bench.test", reports_to=lead)
            for n in range(subjects)
        ]
    )
    pool = max(1, int(subjects * OUTSIDE_POOL_RATIO))
    with timed() as elapsed:
        with transaction.atomic():
            cycle = services.cycle_create(
                team=team,
                by=manager,
                name=f"Bench {subjects}",
                deadline=timezone.now() + timedelta(days=14),
                people=people,
                default_raters=False,
            )
            subjects_by_person = {subject.person_id: subject for subject in cycle.subjects.all()}
            raters = []
            for index, person in enumerate(people):
                subject = subjects_by_person[person.pk]
                raters.append(services.RaterSpec(subject=subject, group=Group.SELF, email=person.email, person=person))
                raters.append(services.RaterSpec(subject=subject, group=Group.MANAGER, email=lead.email, person=lead))
                for step in range(1, 6):
                    peer = people[(index + step) % len(people)]
                    raters.append(services.RaterSpec(subject=subject, group=Group.PEER, email=peer.email, person=peer))
                for step in range(3):
                    address = f"outside{(index * 3 + step) % pool}-{subjects}@partner.test"
                    raters.append(services.RaterSpec(subject=subject, group=Group.OUTSIDE, email=address))
            invitations = services.raters_bulk_add(cycle=cycle, raters=raters)
        services.cycle_launch(cycle=cycle, by=manager)
    emails = OutboundEmail.objects.filter(cycle=cycle).count()
    return cycle.pk, elapsed(), invitations, emails


def sender_benchmark(cycle_id: int) -> tuple[int, float]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink
    from django.test.utils import override_settings

    from config.embedded import free_port
    from surveys import services
    from surveys.models import OutboundEmail

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ids = list(OutboundEmail.objects.filter(cycle_id=cycle_id).order_by("id").values_list("id", flat=True))
        with (
            override_settings(
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1", EMAIL_PORT=port
            ),
            timed() as elapsed,
        ):
            for start in range(0, len(ids), services.EMAIL_BATCH_SIZE):
                failed = services.outbound_emails_send(email_ids=ids[start : start + services.EMAIL_BATCH_SIZE])
                if failed:
                    raise RuntimeError(f"{len(failed)} emails were not accepted by the local SMTP server")
        sent = OutboundEmail.objects.filter(cycle_id=cycle_id, status=OutboundEmail.Status.SENT).count()
        return sent, elapsed()
    finally:
        controller.stop()


def main() -> None:
    bench_django_setup()
    print(f"Launch: subjects × {RATERS_PER_SUBJECT} raters (create subjects + assign raters + launch)")
    cycles = {}
    for subjects in (100, 1000):
        cycle_id, seconds, invitations, emails = launch_benchmark(subjects)
        cycles[subjects] = cycle_id
        print(
            f"  {subjects:>5} subjects: {seconds:6.2f} s  "
            f"({invitations} invitations, {emails} raters emailed, {invitations / seconds:,.0f} invitations/s)"
        )
    sent, seconds = sender_benchmark(cycles[1000])
    print(f"Sender: {sent} emails to a local SMTP server in {seconds:.2f} s = {sent / seconds:,.0f} emails/s")


if __name__ == "__main__":
    main()
