"""Reminder rounds: scheduled and manual, each email at most once per round."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.utils import timezone

from surveys.models import (
    Cycle,
    Invitation,
    OutboundEmail,
    Reminder,
)
from surveys.services.outbox import emails_ring_on_commit

logger = logging.getLogger(__name__)

REMINDER_MIN_INTERVAL = timedelta(hours=1)


def reminder_send(*, cycle: Cycle, kind: str, by: Any = None) -> Reminder | None:
    """Record a reminder round and queue one email to each rater who still has an open invitation.

    Returns ``None`` when a scheduled round already happened. A manual round is refused
    within an hour of the previous one: raters should not get a stream of emails from a
    double click. A round with nobody left to remind is recorded like any other and sends
    nothing: refusing it would tell the manager that every rater — the lone direct report
    too — had answered or declined.
    """
    with transaction.atomic():
        # The row lock serializes concurrent requests, so the hour check below cannot race; in
        # NO KEY UPDATE mode, so that the cycle's submits do not wait for a large round.
        cycle = Cycle.objects.select_for_update(no_key=True).get(pk=cycle.pk)
        if cycle.status != Cycle.Status.OPEN:
            raise ValidationError({"status": "Only an open cycle can send reminders."})
        if kind == Reminder.Kind.MANUAL:
            recent = cycle.reminders.filter(created_at__gt=timezone.now() - REMINDER_MIN_INTERVAL).first()
            if recent is not None:
                wait = max(1, int((recent.created_at + REMINDER_MIN_INTERVAL - timezone.now()).total_seconds() // 60))
                raise ValidationError(
                    {"reminder": f"A reminder was sent less than an hour ago; try again in {wait} min."}
                )
        elif cycle.reminders.filter(kind=Reminder.Kind.SCHEDULED).exists():
            return None
        recipients = sorted(
            set(cycle.invitations.filter(status=Invitation.Status.OPEN).values_list("rater_email", flat=True))
        )
        reminder = Reminder.objects.create(cycle=cycle, kind=kind, requested_by=by)
        emails = OutboundEmail.objects.bulk_create(
            [
                OutboundEmail(cycle=cycle, recipient=email, kind=OutboundEmail.Kind.REMINDER, reminder=reminder)
                for email in recipients
            ],
            batch_size=2000,
        )
        emails_ring_on_commit(len(emails))
    return reminder


def reminders_send_due() -> list[int]:
    """The scheduled round: open cycles within ``reminder_days_before`` days of their deadline."""
    now = timezone.now()
    due = (
        Cycle.objects.filter(status=Cycle.Status.OPEN, deadline__gt=now)
        .exclude(reminders__kind=Reminder.Kind.SCHEDULED)
        .annotate(
            remind_from=ExpressionWrapper(
                F("deadline") - F("reminder_days_before") * timedelta(days=1), output_field=DateTimeField()
            )
        )
        .filter(remind_from__lte=now)
    )
    sent = []
    for cycle in due:
        try:
            reminder = reminder_send(cycle=cycle, kind=Reminder.Kind.SCHEDULED)
        except IntegrityError:
            continue  # another scheduler run recorded this cycle's round first
        if reminder is not None:
            sent.append(cycle.pk)
    return sent
