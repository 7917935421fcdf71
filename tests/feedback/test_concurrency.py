"""Ten concurrent submits of one link against a live server and real PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction

from feedback.models import Response, SealedAnswer
from feedback.services import response_submit
from surveys.models import Cycle, Group, Invitation, Reminder, Subject
from surveys.services import cycle_close, cycles, invitation_link_create, reminders
from tests.factories import CycleFactory, InvitationFactory
from tests.feedback.helpers import full_answers

pytestmark = pytest.mark.django_db(transaction=True)

RACERS = 10


def _post(url: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps serving the first snapshot of its activity
        # statistics; clear it so each call sees the backends as they are now.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def _open_link(live_server: Any, *, value: int) -> tuple[Cycle, Invitation, str, bytes]:
    """An open cycle's invitation with a live link: (cycle, invitation, submit URL, answers)."""
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    invitation = InvitationFactory(subject__cycle=cycle, status=Invitation.Status.OPEN)
    token = invitation_link_create(invitation=invitation)
    url = f"{live_server.url}/api/survey/{token}/responses/"
    return cycle, invitation, url, json.dumps(full_answers(cycle, value=value)).encode()


def test_ten_concurrent_submits_of_one_link_store_exactly_one_response(
    live_server: Any, default_questionnaire: Any
) -> None:
    # given
    _cycle, invitation, url, payload = _open_link(live_server, value=3)
    results: list[tuple[int, dict[str, Any]]] = []
    start = threading.Barrier(RACERS)

    def race() -> None:
        start.wait()
        results.append(_post(url, payload))

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    # when: all ten requests get past every read and queue up on the invitation row
    # before any of them can write, which is the worst interleaving there is
    with transaction.atomic():
        Invitation.objects.select_for_update().get(pk=invitation.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while _waiting_on_locks() < RACERS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_on_locks() == RACERS, results
    for thread in threads:
        thread.join(timeout=60)
    # then
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (RACERS - 1)
    conflicts = [body for status, body in results if status == 409]
    assert all(body == {"detail": "This survey was already submitted or is no longer open."} for body in conflicts)
    assert SealedAnswer.objects.count() == 1
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED


def test_ten_concurrent_submits_without_help_still_store_one_response(
    live_server: Any, default_questionnaire: Any
) -> None:
    # Whatever the timing, one answer wins; the others hear "already submitted" (409)
    # or, arriving after it committed, the neutral "not open" (404).
    _cycle, _invitation, url, payload = _open_link(live_server, value=2)
    results: list[int] = []
    start = threading.Barrier(RACERS)

    def race() -> None:
        start.wait()
        results.append(_post(url, payload)[0])

    threads = [threading.Thread(target=race) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == RACERS
    assert results.count(201) == 1
    assert set(results) <= {201, 409, 404}
    assert SealedAnswer.objects.count() == 1


@contextlib.contextmanager
def _close_held_open(cycle: Cycle, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The real ``cycle_close`` of ``cycle`` in a thread of its own, held just after it has
    locked the cycle's open invitations (before it counts the progress, rewrites the
    invitations and opens the answers) until the yielded event is set."""
    reached, release = threading.Event(), threading.Event()
    count = cycles.answer_counts

    def counted_later(**kwargs: Any) -> Any:
        reached.set()
        release.wait(60)
        return count(**kwargs)

    def close() -> None:
        try:
            cycle_close(cycle=cycle, by=None)
        finally:
            connection.close()

    monkeypatch.setattr(cycles, "answer_counts", counted_later)
    closer = threading.Thread(target=close)
    try:
        closer.start()
        assert reached.wait(30), "the close did not get under way"
        yield release
    finally:
        release.set()
        closer.join(timeout=60)


def test_a_submit_that_arrives_while_the_cycle_closes_waits_for_the_close_and_is_refused(
    live_server: Any, default_questionnaire: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a close under way — it has locked the cycle's open invitations and has yet to
    # count the progress and open the answers
    cycle, invitation, url, payload = _open_link(live_server, value=3)
    results: list[int] = []
    submit = threading.Thread(target=lambda: results.append(_post(url, payload)[0]))
    with _close_held_open(cycle, monkeypatch) as release:
        # when: a submit comes in
        submit.start()
        deadline = time.monotonic() + 5
        while _waiting_on_locks() < 1 and time.monotonic() < deadline and not results:
            time.sleep(0.05)
        # then it waits on its invitation, which the close holds: without that lock it would
        # be stored now, opened by the close, and missing from the progress the close keeps
        assert not results
        assert _waiting_on_locks() == 1
        release.set()
    submit.join(timeout=60)
    assert results == [404]
    assert not SealedAnswer.objects.exists()
    assert not Response.objects.filter(cycle=cycle).exists()
    subject = Subject.objects.get(pk=invitation.subject_id)
    assert subject.final_progress is not None and subject.final_progress["anonymous"][0] == 1


def test_a_close_waits_for_a_submit_under_way_and_counts_and_opens_its_answer(default_questionnaire: Any) -> None:
    # given: a submit whose claim is made and not yet committed
    cycle = CycleFactory(status=Cycle.Status.OPEN)
    invitation = InvitationFactory(subject__cycle=cycle, group=Group.SELF, status=Invitation.Status.OPEN)
    claimed, commit = threading.Event(), threading.Event()

    def submit() -> None:
        try:
            with transaction.atomic():
                response_submit(invitation_id=invitation.pk, answers=full_answers(cycle, value=4))
                claimed.set()
                commit.wait(60)
        finally:
            connection.close()

    submitter = threading.Thread(target=submit)
    submitter.start()
    assert claimed.wait(30)
    closer = threading.Thread(target=lambda: (cycle_close(cycle=cycle, by=None), connection.close()))
    # when: the cycle closes meanwhile
    closer.start()
    deadline = time.monotonic() + 5
    while _waiting_on_locks() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # then the close waits for it ...
    assert _waiting_on_locks() == 1 and closer.is_alive()
    commit.set()
    submitter.join(timeout=60)
    closer.join(timeout=60)
    # ... and the answer is both counted in the manager's final progress and opened
    subject = Subject.objects.get(pk=invitation.subject_id)
    assert subject.final_progress is not None and subject.final_progress["self"] == [1, 1]
    assert Response.objects.filter(cycle=cycle).count() == 1
    assert not SealedAnswer.objects.exists()


@contextlib.contextmanager
def _cycle_write_held_open(cycle: Cycle, write: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A manager's write to ``cycle`` (``write``: a settings change or a reminder round) in a
    thread of its own, held inside its transaction, after it has locked the cycle row."""
    reached, release = threading.Event(), threading.Event()
    if write == "settings":
        target, name = cycles, "_cycle_settings_validate"
    else:
        target, name = reminders, "emails_ring_on_commit"
    original = getattr(target, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        release.wait(60)
        return original(*args, **kwargs)

    def run() -> None:
        try:
            if write == "settings":
                cycles.cycle_update(cycle=cycle, changes={"name": "Renamed while raters answer"})
            else:
                reminders.reminder_send(cycle=cycle, kind=Reminder.Kind.MANUAL)
        finally:
            connection.close()

    monkeypatch.setattr(target, name, held)
    writer = threading.Thread(target=run)
    try:
        writer.start()
        assert reached.wait(30), "the write did not get under way"
        yield
    finally:
        release.set()
        writer.join(timeout=60)


@pytest.mark.parametrize("write", ["settings", "reminder round"])
def test_a_submit_does_not_wait_for_a_managers_change_to_its_cycle(
    live_server: Any, default_questionnaire: Any, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    # The manager's write locks the cycle row against other writes to it; a submit only
    # checks that the row is there (its answer's foreign key) and must not queue behind it:
    # a reminder round of a large cycle takes seconds.
    cycle, invitation, url, payload = _open_link(live_server, value=4)
    results: list[int] = []
    with _cycle_write_held_open(cycle, write, monkeypatch):
        submit = threading.Thread(target=lambda: results.append(_post(url, payload)[0]))
        submit.start()
        deadline = time.monotonic() + 10
        while not results and _waiting_on_locks() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        # answered while the write still holds the cycle row, no backend waiting on a lock
        assert results == [201] and _waiting_on_locks() == 0
    submit.join(timeout=60)
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED
    assert SealedAnswer.objects.filter(cycle=cycle).count() == 1
