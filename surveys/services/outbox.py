"""Sending the recorded emails in batches, with retries and visible failures."""

from __future__ import annotations

import logging
import smtplib
from datetime import timedelta
from typing import Any

from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config import links
from surveys.emails import invitation_email_build, nomination_approved_email_build, nomination_email_build
from surveys.models import (
    Cycle,
    Invitation,
    Nomination,
    OutboundEmail,
)
from surveys.services.links import invitation_links_create

logger = logging.getLogger(__name__)

# Emails per Celery task: each task reuses one SMTP connection for its batch.
EMAIL_BATCH_SIZE = 100
# An email claimed by a worker that then died is handed to the next attempt after this.
EMAIL_CLAIM_TIMEOUT = timedelta(minutes=15)


def _error_is_permanent(error: Exception) -> bool:
    """A 5xx answer means retrying cannot help (unknown mailbox, rejected content)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def _error_describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _connection_close(connection: Any) -> None:
    try:
        connection.close()
    except (smtplib.SMTPException, OSError):
        logger.info("email connection did not close cleanly")


def outbound_emails_send(*, email_ids: list[int]) -> list[int]:
    """Send the queued emails among ``email_ids`` over one connection; returns the ids to retry.

    Each email is claimed first (a row lock, then status ``sending``), so two deliveries of
    the same task never send it twice. Its body is composed now, with new links created
    for it, committed before the send: the raw tokens exist only in the message.
    """
    now = timezone.now()
    with transaction.atomic():
        claimable = (
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(id__in=email_ids)
            .filter(
                Q(status=OutboundEmail.Status.QUEUED)
                | Q(status=OutboundEmail.Status.SENDING, claimed_at__lt=now - EMAIL_CLAIM_TIMEOUT)
            )
        )
        ids = list(claimable.values_list("id", flat=True))
        OutboundEmail.objects.filter(id__in=ids).update(
            status=OutboundEmail.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    if not ids:
        return []
    # The claimed emails not yet handed to the server. If the batch is interrupted (the
    # task's soft time limit), they go back to the queue at once instead of waiting, as
    # ``sending``, for the claim to time out.
    unsent = set(ids)
    retry: list[int] = []
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
        pending = [email for email in emails if email.pk in messages]
        # Nothing left to ask (answered, declined or closed meanwhile): no email at all.
        OutboundEmail.objects.filter(id__in={email.pk for email in emails} - set(messages)).update(
            status=OutboundEmail.Status.SKIPPED
        )
        for email in pending:
            # From here on the server may accept this email whatever happens to us.
            unsent.discard(email.pk)
            message = messages[email.pk]
            try:
                if not opened:
                    connection.open()
                    opened = True
                if connection.send_messages([message]) != 1:
                    raise smtplib.SMTPException("the email backend did not accept the message")
            except (smtplib.SMTPException, OSError) as error:
                permanent = _error_is_permanent(error)
                OutboundEmail.objects.filter(pk=email.pk).update(
                    status=OutboundEmail.Status.FAILED if permanent else OutboundEmail.Status.QUEUED,
                    last_error=_error_describe(error),
                )
                logger.warning(
                    "email %s (%s) not sent, %s: %s",
                    email.pk,
                    email.kind,
                    "permanent" if permanent else "will retry",
                    type(error).__name__,
                )
                if not permanent:
                    retry.append(email.pk)
                # The server may have dropped the session: start the next email on a fresh one.
                _connection_close(connection)
                opened = False
            else:
                OutboundEmail.objects.filter(pk=email.pk).update(
                    status=OutboundEmail.Status.SENT, sent_at=timezone.now(), last_error=""
                )
    except BaseException:
        # Only the rows this claim still holds and never handed over. The email being sent
        # when the interruption came stays ``sending`` (the server may have accepted it):
        # it is taken back only once its claim has timed out, never straight away.
        OutboundEmail.objects.filter(id__in=unsent, status=OutboundEmail.Status.SENDING, claimed_at=now).update(
            status=OutboundEmail.Status.QUEUED
        )
        raise
    finally:
        _connection_close(connection)
    return retry


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


def _nomination_messages(emails: list[OutboundEmail]) -> dict[int, EmailMultiAlternatives]:
    """Nomination requests, each with a new link that replaces any earlier one."""
    if not emails:
        return {}
    nominations = {
        (nomination.subject.cycle_id, nomination.subject.person.email.lower()): nomination
        for nomination in Nomination.objects.filter(
            subject__cycle_id__in={email.cycle_id for email in emails},
            subject__cycle__status=Cycle.Status.NOMINATING,
            subject__person__email__in={email.recipient for email in emails},
        ).select_related("subject__person", "subject__cycle")
    }
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
    nominations = {
        (nomination.subject.cycle_id, nomination.subject.person.email.lower()): nomination
        for nomination in Nomination.objects.filter(
            subject__cycle_id__in={email.cycle_id for email in emails},
            approved_at__isnull=False,
            subject__person__email__in={email.recipient for email in emails},
        ).select_related("subject__person", "subject__cycle")
    }
    return {
        email.pk: nomination_approved_email_build(nomination=nominations[(email.cycle_id, email.recipient)])
        for email in emails
        if (email.cycle_id, email.recipient) in nominations
    }


def outbound_emails_requeue_stale() -> list[int]:
    """Queue again the emails left ``sending`` past the claim timeout, and those never
    picked up since they were recorded that long ago; returns their ids.

    A worker that dies mid-batch leaves its claimed emails ``sending``; the redelivered
    task cannot claim them yet (the claim is too recent) and ends, so nothing else would
    ever send them. The task's time limit is well below ``EMAIL_CLAIM_TIMEOUT``, so a row
    still ``sending`` after it belongs to no live worker. Only such rows are taken back
    (a conditional UPDATE), so an email already sent is never sent again.
    """
    cutoff = timezone.now() - EMAIL_CLAIM_TIMEOUT
    with transaction.atomic():
        stale = OutboundEmail.objects.select_for_update(skip_locked=True).filter(
            status=OutboundEmail.Status.SENDING, claimed_at__lt=cutoff
        )
        ids = list(stale.values_list("id", flat=True))
        OutboundEmail.objects.filter(id__in=ids, status=OutboundEmail.Status.SENDING, claimed_at__lt=cutoff).update(
            status=OutboundEmail.Status.QUEUED
        )
        # Emails still queued long after they were recorded: their task may never have
        # reached the broker (it was down at commit). Queuing one twice is harmless: only
        # the task that claims it (queued → sending) sends it.
        never_sent = OutboundEmail.objects.filter(
            status=OutboundEmail.Status.QUEUED, created_at__lt=cutoff, claimed_at__isnull=True
        ).values_list("id", flat=True)
        ids += list(never_sent)
        emails_enqueue_on_commit(ids)
    if ids:
        logger.warning("re-queued %s email(s) left sending by an interrupted worker", len(ids))
    return ids


def outbound_emails_fail(*, email_ids: list[int]) -> int:
    """Give up on emails that kept failing: they show as failed on the manager's cycle page."""
    return OutboundEmail.objects.filter(id__in=email_ids, status=OutboundEmail.Status.QUEUED).update(
        status=OutboundEmail.Status.FAILED
    )


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
        OutboundEmail.objects.filter(id__in=ids).update(status=OutboundEmail.Status.QUEUED, last_error="")
        emails_enqueue_on_commit(ids)
    return ids


def emails_enqueue_on_commit(email_ids: list[int]) -> None:
    # Imported here: the tasks module imports this one.
    from surveys.tasks import emails_send

    batches = [email_ids[start : start + EMAIL_BATCH_SIZE] for start in range(0, len(email_ids), EMAIL_BATCH_SIZE)]
    for batch in batches:
        # robust: with the broker briefly down the launch or reminder has still happened
        # (its emails are recorded, queued); the request must not fail, and the scheduled
        # outbox job queues the emails again (outbound_emails_requeue_stale).
        # A named function, not a partial: Django names the callback when it logs a failure.
        def emails_send_batch(ids: list[int] = batch) -> None:
            emails_send.delay(ids)

        transaction.on_commit(emails_send_batch, robust=True)
