"""Launch and close raced from two threads, as two tabs or a double click would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from surveys import services
from surveys.models import Cycle, OutboundEmail
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
