"""Durable background jobs: PostgreSQL holds every job's state, the broker only rings a doorbell.

Every email, report and release is a row with its ``status``, ``attempts``, ``not_before``
and claim (``claimed_by``, ``claimed_at``). A worker claims rows with one locked SELECT
(``FOR UPDATE SKIP LOCKED`` on the job's own table, never a join) and an UPDATE, keeps its
claim alive while it works (a lease, renewed every third of ``JOB_LEASE_SECONDS``), and
writes the outcome only while it still holds the claim. A Celery message carries no job:
it only says "there is work of this kind", and any worker that receives it claims whatever
is due. Beat runs ``jobs_sweep`` every ``JOB_SWEEP_SECONDS``: it rings for every kind
that has due work — queued rows whose ``not_before`` has passed (a retry, or a message
lost with Redis) and running rows whose lease ran out (their worker died). So losing every
broker message at any moment delays work by about a minute and loses nothing; and since a
row is worked on only by the holder of its claim, nothing is done twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import DurationField, F, Q, Value
from django.db.models.functions import Now

logger = logging.getLogger(__name__)


class Job(models.Model):
    """The columns every durable job shares; its ``status`` field stays the model's own."""

    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims so far, retries included.")
    not_before = models.DateTimeField(db_default=Now(), help_text="Not claimed before this time.")
    claimed_by = models.CharField(max_length=100, blank=True, help_text="The worker run holding the claim.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="Claim taken or last renewed.")
    handed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the claim holder began an effect that cannot be taken back."
    )

    class Meta:
        abstract = True


@dataclass(frozen=True)
class JobKind:
    """How one model's rows are worked: its states, attempt budget, batch and doorbell task."""

    name: str
    model: type[Job]
    task: str
    max_attempts: int
    reason_field: str
    batch_size: int = 1
    queued: str = "queued"
    running: str = "running"
    failed: str = "failed"
    # Rows that must never be claimed whatever their status (a revoked release).
    exclude: Q = field(default_factory=Q)

    def rows(self) -> models.QuerySet[Any]:
        # ``order_by()``: the models' default orderings join other tables, and a locked
        # SELECT over a join would lock (and skip) rows of those tables too.
        return self.model._default_manager.order_by()


KINDS: dict[str, JobKind] = {}


def job_kind_register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


def lease_duration() -> timedelta:
    return timedelta(seconds=settings.JOB_LEASE_SECONDS)


def job_owner() -> str:
    """A name for one worker run: host, process and a random part (a pid is reused)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(4)}"


def db_now_plus(delay: timedelta) -> Any:
    """The database's time plus ``delay``: the one clock every job time is written and read with."""
    return Now() + Value(delay, output_field=DurationField())


def _lapsed() -> Q:
    return Q(claimed_at__lt=db_now_plus(-lease_duration()))


def _claimable(kind: JobKind) -> Q:
    due = Q(status=kind.queued, not_before__lte=Now())
    # A lapsed claim whose holder had not handed anything over: its worker is gone and
    # nothing it did can have left the system, so doing it again is safe.
    orphaned = Q(status=kind.running, handed_at__isnull=True) & _lapsed()
    return (due | orphaned) & ~kind.exclude if kind.exclude else due | orphaned


def jobs_claim(kind: JobKind, *, owner: str, ids: Iterable[int] | None = None, limit: int | None = None) -> list[int]:
    """Claim due rows for ``owner`` (among ``ids`` if given, at most ``limit``); returns their ids.

    A row whose attempts are spent is failed here instead: a job that kills its worker
    every time would otherwise be claimed again forever.
    """
    with transaction.atomic():
        candidates = kind.rows().filter(_claimable(kind))
        if ids is not None:
            candidates = candidates.filter(id__in=list(ids))
        locked = candidates.select_for_update(skip_locked=True, of=("self",)).order_by("not_before", "id")
        rows = list((locked[:limit] if limit else locked).values_list("id", "attempts"))
        spent = [pk for pk, attempts in rows if attempts >= kind.max_attempts]
        claimed = [pk for pk, attempts in rows if attempts < kind.max_attempts]
        if spent:
            kind.rows().filter(id__in=spent).update(
                status=kind.failed,
                claimed_by="",
                **{kind.reason_field: f"Gave up after {kind.max_attempts} attempts: the job kept stopping."},
            )
            logger.error("%s: gave up on %s job(s) after %s attempts", kind.name, len(spent), kind.max_attempts)
        kind.rows().filter(id__in=claimed).update(
            status=kind.running, claimed_by=owner, claimed_at=Now(), handed_at=None, attempts=F("attempts") + 1
        )
    return claimed


def job_hand_over(kind: JobKind, *, pk: int, owner: str, still: Q | None = None) -> bool:
    """Mark a claimed row as handed over, just before its effect that cannot be taken back;
    False if the claim is no longer ours (or ``still`` no longer holds), and then the holder
    must not go on. This UPDATE is the fence: a worker that lost its claim, or a row revoked
    since the claim, stops here."""
    rows = kind.rows().filter(id=pk, status=kind.running, claimed_by=owner, handed_at__isnull=True)
    if kind.exclude:
        rows = rows.exclude(kind.exclude)
    if still is not None:
        rows = rows.filter(still)
    return rows.update(handed_at=Now(), claimed_at=Now()) == 1


def job_finish(kind: JobKind, *, ids: Iterable[int], owner: str, status: str, **fields: Any) -> int:
    """Record the outcome of claimed rows, only where ``owner`` still holds the claim."""
    return (
        kind.rows()
        .filter(id__in=list(ids), status=kind.running, claimed_by=owner)
        .update(status=status, claimed_by="", handed_at=None, **fields)
    )


def job_fail(kind: JobKind, *, ids: Iterable[int], owner: str, reason: str) -> int:
    return job_finish(kind, ids=ids, owner=owner, status=kind.failed, **{kind.reason_field: reason[:2000]})


def job_backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: JOB_RETRY_BACKOFF_SECONDS doubling per attempt, capped."""
    seconds = settings.JOB_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.JOB_RETRY_BACKOFF_MAX_SECONDS))


def job_retry_later(kind: JobKind, *, ids: Iterable[int], owner: str, reason: str, ring: bool = True) -> list[int]:
    """Put claimed rows back with ``not_before`` after their back-off, or fail those out of
    attempts; returns the ids that will be tried again. ``ring``: also ring a doorbell with
    the shortest back-off as countdown (the fast path; the sweep rings if it is lost)."""
    retrying: list[int] = []
    shortest: timedelta | None = None
    rows = kind.rows().filter(id__in=list(ids), status=kind.running, claimed_by=owner).values_list("id", "attempts")
    for pk, attempts in rows:
        if attempts >= kind.max_attempts:
            job_fail(kind, ids=[pk], owner=owner, reason=f"Gave up after {attempts} attempts: {reason}")
            continue
        delay = job_backoff(attempts)
        job_finish(
            kind,
            ids=[pk],
            owner=owner,
            status=kind.queued,
            not_before=db_now_plus(delay),
            **{kind.reason_field: f"Retrying after: {reason}"[:2000]},
        )
        retrying.append(pk)
        shortest = delay if shortest is None else min(shortest, delay)
    if ring and shortest is not None:
        jobs_ring(kind, countdown=shortest.total_seconds())
    return retrying


def job_give_back(kind: JobKind, *, ids: Iterable[int], owner: str) -> int:
    """Return claimed rows untouched (an interrupted run): due again at once, attempt refunded."""
    return job_finish(kind, ids=ids, owner=owner, status=kind.queued, not_before=Now(), attempts=F("attempts") - 1)


def job_requeue(kind: JobKind, *, ids: Iterable[int], from_status: str, **fields: Any) -> int:
    """Queue rows in ``from_status`` again now with a fresh attempt budget (a re-run, or a
    retry asked for by a person); returns how many."""
    return (
        kind.rows()
        .filter(id__in=list(ids), status=from_status)
        .update(
            status=kind.queued, attempts=0, not_before=Now(), claimed_by="", claimed_at=None, handed_at=None, **fields
        )
    )


class Lease:
    """Keeps a claim alive while its holder works: renews ``claimed_at`` every third of the
    lease from a thread of its own (with its own database connection).

    ``held()`` says whether the claim is still surely ours; a holder about to do something
    that must not happen twice (hand an email to the server) asks first. If renewal fails
    (the database is gone), the claim may lapse and be taken by another worker, so the
    holder stops before that can happen.
    """

    def __init__(self, kind: JobKind, ids: Iterable[int], owner: str, *, until: float | None = None) -> None:
        self.kind, self.ids, self.owner = kind, list(ids), owner
        # The run's budget (a ``time.monotonic()`` deadline): past it, a holder working step by
        # step gives the rest back instead of running into the task's time limit mid-step.
        self.until = until
        self.duration = settings.JOB_LEASE_SECONDS
        self.renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name=f"lease-{kind.name}", daemon=True)

    def held(self) -> bool:
        # A third of the lease as margin: a holder that sees True can finish a step well
        # before anyone else may take the row.
        return time.monotonic() - self.renewed < self.duration * 2 / 3

    def budget_spent(self) -> bool:
        return self.until is not None and time.monotonic() >= self.until

    def _renew_until_stopped(self) -> None:
        try:
            while not self._stop.wait(self.duration / 3):
                # Taken before the UPDATE: a renewal that waited on a lock is only as fresh as
                # the moment it was asked for.
                asked = time.monotonic()
                try:
                    renewed = (
                        self.kind.rows()
                        .filter(id__in=self.ids, status=self.kind.running, claimed_by=self.owner)
                        .update(claimed_at=Now())
                    )
                except Exception:
                    logger.warning("%s: lease not renewed", self.kind.name, exc_info=True)
                    # A broken connection stays broken unless closed: the next try reconnects.
                    connection.close()
                    continue
                if renewed:
                    self.renewed = asked
                else:
                    # Every row finished, or the claim was taken over: nothing left to hold.
                    self.renewed = float("-inf")
                    return
        finally:
            connection.close()

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


Worker = Callable[[list[int], str, Lease], Any]


def job_run_one(kind: JobKind, work: Worker, *, pk: int | None = None) -> Any:
    """Claim one due row (``pk``, or the next due one) and work it under a lease; returns what
    ``work`` returns, or None when nothing was claimed."""
    owner = job_owner()
    claimed = jobs_claim(kind, owner=owner, ids=None if pk is None else [pk], limit=1)
    if not claimed:
        return None
    with Lease(kind, claimed, owner) as lease:
        return work(claimed, owner, lease)


def jobs_work(kind: JobKind, work: Worker, *, ids: Iterable[int] | None = None) -> int:
    """Claim and work due rows of ``kind`` batch after batch until none is due or the run's
    budget (JOB_RUN_SECONDS) is spent; returns how many were claimed.

    ``work(ids, owner, lease)`` records each row's outcome with the helpers above. A row
    it leaves claimed (it raised half-way) is left to its lease: only ``work`` knows whether
    its effect (an email handed to the server) may already have happened.
    """
    owner = job_owner()
    deadline = time.monotonic() + settings.JOB_RUN_SECONDS
    claimed_total = 0
    while True:
        claimed = jobs_claim(kind, owner=owner, ids=ids, limit=kind.batch_size)
        if not claimed:
            return claimed_total
        claimed_total += len(claimed)
        with Lease(kind, claimed, owner, until=deadline) as lease:
            work(claimed, owner, lease)
        if ids is not None:
            return claimed_total
        if time.monotonic() > deadline:
            # Leave the worker to other kinds' messages; whatever is left is rung for.
            jobs_ring(kind)
            return claimed_total


def job_task(kind: JobKind) -> Any:
    """The doorbell task of ``kind``; a web process imports the apps' task modules the first time."""
    from celery.exceptions import NotRegistered

    from config.celery import app

    try:
        return app.tasks[kind.task]
    except NotRegistered:
        app.loader.import_default_modules()
        return app.tasks[kind.task]


def jobs_ring(kind: JobKind, *, count: int = 1, countdown: float | None = None) -> int:
    """Send ``count`` doorbell messages for ``kind``; returns how many reached the broker.

    Never raises: with the broker down the work is still recorded and the sweep rings
    for it once the broker is back.
    """
    sent = 0
    for _ in range(count):
        try:
            # Through the registered task, not send_task: eager test settings then run it inline.
            task = job_task(kind)
            task.apply_async() if countdown is None else task.apply_async(countdown=countdown)
        except Exception as error:
            logger.warning("%s: doorbell not rung (%s); the sweep will", kind.name, type(error).__name__)
            break
        sent += 1
    return sent


def jobs_ring_on_commit(kind: JobKind, *, jobs: int) -> None:
    """Ring for ``jobs`` new rows once the surrounding transaction commits."""
    count = min(-(-jobs // kind.batch_size), settings.JOB_MAX_DOORBELLS)
    if count <= 0:
        return

    # A named function, not a partial: Django names the callback when it logs a failure.
    def doorbell_ring() -> None:
        jobs_ring(kind, count=count)

    # robust: whatever goes wrong with the broker, the request that recorded the work has
    # committed and must answer normally.
    transaction.on_commit(doorbell_ring, robust=True)


def jobs_due(kind: JobKind) -> int:
    return kind.rows().filter(_claimable(kind)).count()


# The reason a row handed over by a worker that then died is failed with.
HANDED_OVER_AND_LOST = (
    "The worker stopped while handing this over (the mail server may or may not have taken it); "
    "not sent again automatically, so that it cannot arrive twice."
)


def jobs_settle_lost_handovers(kind: JobKind) -> int:
    """Fail the rows whose worker died after handing them over: doing them again could do
    them twice, so a person decides (the failure shows with a "try again")."""
    lost = kind.rows().filter(_lapsed(), status=kind.running, handed_at__isnull=False)
    count = lost.update(status=kind.failed, claimed_by="", handed_at=None, **{kind.reason_field: HANDED_OVER_AND_LOST})
    if count:
        logger.error("%s: %s job(s) lost after hand-over, failed for a person to retry", kind.name, count)
    return count


def jobs_sweep() -> dict[str, int]:
    """Ring for every kind with due or orphaned rows (run by beat every JOB_SWEEP_SECONDS)."""
    rung: dict[str, int] = {}
    for kind in KINDS.values():
        jobs_settle_lost_handovers(kind)
        due = jobs_due(kind)
        if due:
            rung[kind.name] = jobs_ring(kind, count=min(-(-due // kind.batch_size), settings.JOB_MAX_DOORBELLS))
            logger.info("sweep: %s %s job(s) due, %s doorbell(s) rung", due, kind.name, rung[kind.name])
    return rung


# --- Email errors, for every job that sends one ------------------------------------------


def smtp_error_is_permanent(error: BaseException) -> bool:
    """A 5xx answer means retrying cannot help (unknown mailbox, rejected content)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def error_describe(error: BaseException, prefix: str = "") -> str:
    text = f"{type(error).__name__}: {error}"
    return (f"{prefix}: {text}" if prefix else text)[:500]
