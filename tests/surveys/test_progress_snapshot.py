"""The answer counts a manager sees move once per snapshot period, never with each answer."""

from __future__ import annotations

import time
from typing import Any

import pytest

from surveys import selectors
from surveys.models import Cycle, Group, Invitation

pytestmark = pytest.mark.django_db


def _answered(cycle: Cycle) -> tuple[int, ...]:
    return tuple(
        sum(
            (progress.self_rater.answered, progress.manager_rater.answered, progress.anonymous_answered or 0),
        )
        # read afresh, as each request reads it
        for progress in selectors.cycle_progress(cycle=Cycle.objects.get(pk=cycle.pk))
    )


def test_an_answer_shows_in_the_counts_only_in_the_next_period(
    open_cycle: Cycle, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PROGRESS_SNAPSHOT_SECONDS = 900
    now = 1_800_000_000.0  # the start of a period
    monkeypatch.setattr(time, "time", lambda: now)
    before = _answered(open_cycle)
    # when: a rater answers, and the manager watches the counts a few seconds later
    invitation = open_cycle.invitations.filter(group=Group.SELF).first()
    assert invitation is not None
    Invitation.objects.filter(pk=invitation.pk).update(status=Invitation.Status.COMPLETED)
    now += 5
    # then: nothing moved, so watching tells no one's time of answering
    assert _answered(open_cycle) == before
    now += 900
    assert sum(_answered(open_cycle)) == sum(before) + 1


def test_looking_just_before_and_just_after_a_period_boundary_shows_the_same_counts(
    open_cycle: Cycle, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a manager who looks two seconds before a multiple of the period and again two seconds
    # after it: the two snapshots, if both were taken, would tell who answered in between
    settings.PROGRESS_SNAPSHOT_SECONDS = 900
    now = 1_800_000_000.0 + 898
    monkeypatch.setattr(time, "time", lambda: now)
    before = _answered(open_cycle)
    Invitation.objects.filter(cycle=open_cycle, group=Group.SELF).update(status=Invitation.Status.COMPLETED)
    now += 4
    assert _answered(open_cycle) == before
    now += 895
    assert _answered(open_cycle) == before
    now += 1
    assert sum(_answered(open_cycle)) > sum(before)


def test_losing_the_cache_neither_shows_live_counts_nor_takes_a_snapshot_early(
    open_cycle: Cycle, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The snapshot is the cycle's own, in PostgreSQL: a Redis flushed (or down) between two
    # looks a few seconds apart must not give a second snapshot in between.
    from django.core.cache import cache

    settings.PROGRESS_SNAPSHOT_SECONDS = 900
    now = 1_800_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    before = _answered(open_cycle)
    Invitation.objects.filter(cycle=open_cycle, group=Group.SELF).update(status=Invitation.Status.COMPLETED)
    cache.clear()
    now += 5
    assert _answered(open_cycle) == before
    stored = Cycle.objects.get(pk=open_cycle.pk)
    assert stored.progress_counted_at is not None and stored.progress_counted_at.timestamp() == 1_800_000_000.0


def test_without_a_period_the_counts_are_live(open_cycle: Cycle, settings: Any) -> None:
    settings.PROGRESS_SNAPSHOT_SECONDS = 0
    before = sum(_answered(open_cycle))
    Invitation.objects.filter(cycle=open_cycle, group=Group.SELF).update(status=Invitation.Status.COMPLETED)
    assert sum(_answered(open_cycle)) > before
