"""Launch and close raced from two threads, as two tabs or a double click would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from surveys import services
from surveys.models import Cycle, Group, Invitation, OutboundEmail
from surveys.services import cycles as cycles_service
from surveys.signals import cycle_closed
from tests.surveys.helpers import team_build

pytestmark = pytest.mark.django_db(transaction=True)


def _race(action: Callable[[], bool]) -> list[bool]:
    barrier = threading.Barrier(2)
    results: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(action())
        except BaseException as error:  # surfaced below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return sorted(results)


def _cycle(manager: Any) -> Cycle:
    team = team_build(manager)
    return services.cycle_create(
        team=team, by=manager, name="Raced", deadline=timezone.now() + timedelta(days=3), people=list(team.people.all())
    )


def test_two_simultaneous_launches_send_one_set_of_emails(
    manager: Any, doorbells: list[tuple[str, float | None]]
) -> None:
    cycle = _cycle(manager)
    assert _race(lambda: services.cycle_launch(cycle=Cycle.objects.get(pk=cycle.pk), by=manager)) == [False, True]
    raters = set(cycle.invitations.values_list("rater_email", flat=True))
    # one email row per rater (the rows are the jobs), and only the winning launch rang
    assert OutboundEmail.objects.filter(cycle=cycle).count() == len(raters)
    assert doorbells == [("surveys.emails_send", None)] * -(-len(raters) // services.EMAIL_BATCH_SIZE)


def test_two_simultaneous_closes_signal_once(manager: Any, doorbells: list[tuple[str, float | None]]) -> None:
    cycle = _cycle(manager)
    services.cycle_launch(cycle=cycle, by=manager)
    signals: list[int] = []

    def listener(sender: Any, cycle: Cycle, **kwargs: Any) -> None:
        signals.append(cycle.pk)

    cycle_closed.connect(listener)
    try:
        assert _race(lambda: services.cycle_close(cycle=Cycle.objects.get(pk=cycle.pk), by=manager)) == [False, True]
    finally:
        cycle_closed.disconnect(listener)
    assert signals == [cycle.pk]


def test_a_rater_added_while_the_cycle_launches_is_launched_with_it_or_refused(manager: Any) -> None:
    # given: a launch under way — the cycle flipped to open, its drafts opened, not yet committed
    cycle = _cycle(manager)
    reached, release = threading.Event(), threading.Event()
    ring = cycles_service.emails_ring_on_commit

    def held(count: int) -> None:
        reached.set()
        release.wait(60)
        ring(count)

    def launch() -> None:
        try:
            services.cycle_launch(cycle=Cycle.objects.get(pk=cycle.pk), by=manager)
        finally:
            connection.close()

    outcome: list[str] = []

    def add() -> None:
        try:
            subject = cycle.subjects.select_related("person").first()
            assert subject is not None
            services.rater_add(cycle=cycle, subject=subject, email="late@rater.test", group=Group.PEER)
            outcome.append("added")
        except ValidationError as error:
            outcome.append(" ".join(error.messages))
        finally:
            connection.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cycles_service, "emails_ring_on_commit", held)
        launcher = threading.Thread(target=launch)
        launcher.start()
        assert reached.wait(30)
        # when: the manager adds a rater in another tab
        adder = threading.Thread(target=add)
        adder.start()
        adder.join(timeout=2)
        # then the add waits for the launch (it would otherwise insert a draft the launch never sees) ...
        assert not outcome
        release.set()
        launcher.join(timeout=60)
        adder.join(timeout=60)
    # ... and is refused: the cycle is open now, and nothing was left in draft
    assert outcome == ["Raters can only be changed before the cycle is launched."]
    assert not cycle.invitations.filter(status=Invitation.Status.DRAFT).exists()
