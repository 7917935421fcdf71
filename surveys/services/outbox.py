"""Sending the recorded emails in batches, through the durable jobs of ``config.jobs``.

Every email is an ``OutboundEmail`` row written with the change that calls for it (a
launch, a reminder round, a nomination request); a worker claims due rows a batch at a
time, composes each body with fresh links at send time and records how it went.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from config import links
from config.jobs import (
    Lease,
    error_describe,
    job_backoff,
    job_fail,
    job_finish,
    job_give_back,
    job_hand_over,
    job_owner,
    job_requeue,
    job_retry_later,
    jobs_claim,
    jobs_ring,
    jobs_ring_on_commit,
    jobs_work,
    smtp_error_is_permanent,
)
from surveys.emails import invitation_email_build, nomination_approved_email_build, nomination_email_build
from surveys.models import EMAIL_BATCH_SIZE, EMAILS, Cycle, Invitation, Nomination, OutboundEmail
from surveys.services.links import invitation_links_create

logger = logging.getLogger(__name__)


def _connection_close(connection: Any) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        logger.info("email connection did not close cleanly")


def outbound_emails_send(*, email_ids: Iterable[int] | None = None) -> list[int]:
    """Claim and send one batch: the due emails among ``email_ids``, or the next due ones.

    Returns the ids put back for a later attempt (``not_before`` after their back-off).
    """
    owner = job_owner()
    claimed = jobs_claim(EMAILS, owner=owner, ids=email_ids, limit=None if email_ids is not None else EMAIL_BATCH_SIZE)
    if not claimed:
        return []
    with Lease(EMAILS, claimed, owner) as lease:
        return _emails_deliver(claimed, owner, lease)


def outbound_emails_work(*, email_ids: Iterable[int] | None = None) -> int:
    """Send due emails batch after batch, or only the due ones among ``email_ids`` (the
    doorbell task's body); returns how many were claimed."""
    return jobs_work(EMAILS, _emails_deliver, ids=email_ids)


def _emails_deliver(ids: list[int], owner: str, lease: Lease) -> list[int]:
    """Send the claimed emails over one connection; returns the ids put back for a retry.

    Each body is composed now, with new links created for it and committed before the
    send: the raw tokens exist only in the message. Each email is handed over (a fenced
    UPDATE) just before it goes to the server, so a worker that lost its claim sends
    nothing, and one that dies mid-send never has its email sent a second time.

    An email the server took is recorded as sent in the transaction that hands over the
    next one (the last one of the batch on its own): one commit per email instead of two,
    each commit being a wait for the disk. A worker that dies before that commit leaves the
    email handed over, exactly as if it had died just after sending: never sent again.
    """
    # The claimed emails not yet handed over. If the run is interrupted (the time limit,
    # the claim lost) they are given back at once, their attempt refunded.
    unsent = set(ids)
    retry: list[int] = []
    # The email the server took last, not yet recorded as sent.
    just_sent: int | None = None
    handed_over = 0
    connection = get_connection()
    opened = False
    try:
        emails = list(OutboundEmail.objects.filter(id__in=ids).select_related("cycle").order_by("id"))
        messages = _invitation_messages(
            [email for email in emails if email.kind in (OutboundEmail.Kind.INVITATION, OutboundEmail.Kind.REMINDER)]
        )
        messages.update(
            _nomination_messages([email for email in emails if email.kind == OutboundEmail.Kind.NOMINATION])
        )
        messages.update(
            _nomination_approved_messages(
                [email for email in emails if email.kind == OutboundEmail.Kind.NOMINATION_APPROVED]
            )
        )
        # Nothing left to ask (answered, declined or closed meanwhile): no email at all.
        skipped = {email.pk for email in emails} - set(messages)
        job_finish(EMAILS, ids=skipped, owner=owner, status=OutboundEmail.Status.SKIPPED)
        unsent -= skipped
        for email in emails:
            if email.pk not in messages:
                continue
            if not lease.held():
                logger.warning("email batch stopped: its claim is no longer held")
                break
            if lease.budget_spent() and handed_over:
                # Past the run's budget (a slow mail server), after at least one email so
                # that every run moves on: the rest are given back, due again at once.
                logger.info("email batch stopped: the run's time is spent, %s given back", len(unsent))
                break
            with transaction.atomic():
                if just_sent is not None:
                    _email_sent_record(just_sent, owner)
                handed = job_hand_over(EMAILS, pk=email.pk, owner=owner)
            just_sent = None
            if not handed:
                logger.warning("email batch stopped: its claim is no longer held")
                break
            # From here on the server may accept this email whatever happens to us.
            unsent.discard(email.pk)
            handed_over += 1
            try:
                if not opened:
                    connection.open()
                    opened = True
                if connection.send_messages([messages[email.pk]]) != 1:
                    raise smtplib.SMTPException("the email backend did not accept the message")
            except (smtplib.SMTPException, OSError) as error:
                permanent = smtp_error_is_permanent(error)
                if permanent:
                    job_fail(EMAILS, ids=[email.pk], owner=owner, reason=error_describe(error))
                else:
                    retry += job_retry_later(
                        EMAILS, ids=[email.pk], owner=owner, reason=error_describe(error), ring=False
                    )
                logger.warning(
                    "email %s (%s) not sent, %s: %s",
                    email.pk,
                    email.kind,
                    "permanent" if permanent else "will retry",
                    type(error).__name__,
                )
                # The server may have dropped the session: start the next email on a fresh one.
                _connection_close(connection)
                opened = False
            else:
                just_sent = email.pk
        if just_sent is not None:
            _email_sent_record(just_sent, owner)
            just_sent = None
    except SoftTimeLimitExceeded:
        # An interruption, not a fault of these emails: due again at once, attempts refunded.
        job_give_back(EMAILS, ids=unsent, owner=owner)
        unsent.clear()
        raise
    except Exception as error:
        # Composing failed (a template, the data, the database): charged as an attempt, so
        # that a batch that always fails ends failed and visible instead of looping.
        logger.exception("email batch of %s failed before sending", len(unsent))
        retry += job_retry_later(EMAILS, ids=unsent, owner=owner, reason=error_describe(error), ring=False)
        unsent.clear()
    finally:
        if just_sent is not None:
            # Interrupted after the server took it (the time limit, the database): recorded
            # as sent if the database lets us; if not, it stays handed over, never sent again.
            try:
                _email_sent_record(just_sent, owner)
            except Exception:
                logger.exception("email %s was sent but could not be recorded as sent", just_sent)
        # Rows still unsent here were never handed over (the claim was lost mid-batch).
        job_give_back(EMAILS, ids=unsent, owner=owner)
        _connection_close(connection)
    if retry:
        # One doorbell for the batch's retries (the sweep rings too once they are due).
        jobs_ring(EMAILS, countdown=job_backoff(1).total_seconds())
    return retry


def _email_sent_record(pk: int, owner: str) -> None:
    recorded = job_finish(
        EMAILS, ids=[pk], owner=owner, status=OutboundEmail.Status.SENT, sent_at=timezone.now(), last_error=""
    )
    if recorded != 1:
        # The claim lapsed while the server took it: the sweep settles the row as "may or may
        # not have been sent"; say here that it was.
        logger.error("email %s was sent but its claim had lapsed: not recorded as sent", pk)


def _invitation_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """Invitation and reminder bodies, each listing the rater's open invitations with new links."""
    if not emails:
        return {}
    invitations: dict[tuple[int, str], list[Invitation]] = {}
    for invitation in Invitation.objects.filter(
        cycle_id__in={email.cycle_id for email in emails},
        rater_email__in={email.recipient for email in emails},
        status=Invitation.Status.OPEN,
    ).select_related("subject__person"):
        invitations.setdefault((invitation.cycle_id, invitation.rater_email), []).append(invitation)
    pending = [email for email in emails if invitations.get((email.cycle_id, email.recipient))]
    # Committed before anything is sent: a rater may click the moment the email arrives.
    with transaction.atomic():
        tokens = invitation_links_create(
            invitations=[
                invitation for email in pending for invitation in invitations[(email.cycle_id, email.recipient)]
            ]
        )
    return {
        email.pk: invitation_email_build(
            kind=email.kind,
            cycle=email.cycle,
            recipient=email.recipient,
            invitations=invitations[(email.cycle_id, email.recipient)],
            tokens=tokens,
        )
        for email in pending
    }


def _nominations_of(emails: list[OutboundEmail], **state: Any) -> dict[tuple[int, str], Nomination]:
    """The nominations the subjects these emails go to, in ``state``, by (cycle, recipient)."""
    return {
        (nomination.subject.cycle_id, nomination.subject.person.email.lower()): nomination
        for nomination in Nomination.objects.filter(
            subject__cycle_id__in={email.cycle_id for email in emails},
            subject__person__email__in={email.recipient for email in emails},
            **state,
        ).select_related("subject__person", "subject__cycle")
    }


def _nomination_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """Nomination requests, each with a new link that replaces any earlier one."""
    if not emails:
        return {}
    nominations = _nominations_of(emails, subject__cycle__status=Cycle.Status.NOMINATING)
    pending = [email for email in emails if (email.cycle_id, email.recipient) in nominations]
    tokens = {}
    for email in pending:
        nomination = nominations[(email.cycle_id, email.recipient)]
        tokens[email.pk] = links.token_new()
        nomination.token_hash = links.token_hash(tokens[email.pk])
    with transaction.atomic():
        Nomination.objects.bulk_update([nominations[(e.cycle_id, e.recipient)] for e in pending], ["token_hash"])
    return {
        email.pk: nomination_email_build(
            nomination=nominations[(email.cycle_id, email.recipient)],
            url=links.nomination_url(tokens[email.pk]),
        )
        for email in pending
    }


def _nomination_approved_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """The subject told that their list of raters is approved (no link: nothing to do)."""
    if not emails:
        return {}
    nominations = _nominations_of(emails, approved_at__isnull=False)
    return {
        email.pk: nomination_approved_email_build(nomination=nominations[(email.cycle_id, email.recipient)])
        for email in emails
        if (email.cycle_id, email.recipient) in nominations
    }


def outbound_emails_retry(*, cycle: Cycle) -> list[int]:
    """Queue the cycle's failed invitation and nomination emails again (the server is back).

    Failed reminders are left alone: their count is never shown (it would say how many
    raters have not answered), and the next reminder round reaches the same raters with
    fresh links anyway.
    """
    with transaction.atomic():
        ids = list(
            OutboundEmail.objects.filter(cycle=cycle, status=OutboundEmail.Status.FAILED)
            .exclude(kind=OutboundEmail.Kind.REMINDER)
            .values_list("id", flat=True)
        )
        job_requeue(EMAILS, ids=ids, from_status=OutboundEmail.Status.FAILED, last_error="")
        emails_ring_on_commit(len(ids))
    return ids


def emails_ring_on_commit(count: int) -> None:
    """Ring for ``count`` newly recorded emails once they are committed."""
    jobs_ring_on_commit(EMAILS, jobs=count)
