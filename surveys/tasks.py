"""Background jobs: sending emails, scheduled reminders and closing cycles at their deadline."""

from __future__ import annotations

from celery import shared_task

from surveys import services


@shared_task(name="surveys.emails_send", ignore_result=True)
def emails_send(email_ids: list[int] | None = None) -> int:
    """A doorbell: send due emails (those among ``email_ids`` if given); returns how many were claimed.

    The message carries no state: which emails are due, claimed and sent is in PostgreSQL,
    so a lost or repeated message loses or doubles nothing.
    """
    return services.outbound_emails_work(email_ids=email_ids)


@shared_task(name="surveys.reminders_send_due")
def reminders_send_due() -> list[int]:
    return services.reminders_send_due()


@shared_task(name="surveys.cycles_close_due")
def cycles_close_due() -> list[int]:
    return services.cycles_close_due()
