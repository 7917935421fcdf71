"""Background jobs: sending emails, scheduled reminders and closing cycles at their deadline."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from surveys import services

logger = logging.getLogger(__name__)

EMAIL_MAX_RETRIES = 5


def _backoff(retries: int) -> float:
    # 30 s, 1 min, 2 min, 4 min, 8 min by default: a server that refuses for a while
    # (greylisting answers 451 for some minutes) gets time to come back.
    base = float(getattr(settings, "SURVEYS_EMAIL_RETRY_BACKOFF", 30))
    return base * (2**retries)


# A batch is killed well before its claim times out, whatever the global task limit: once
# ``EMAIL_CLAIM_TIMEOUT`` has passed, its emails may be handed to another worker, and a
# batch still running then could send them a second time.
EMAIL_TASK_TIME_LIMIT = int(services.EMAIL_CLAIM_TIMEOUT.total_seconds() * 2 / 3)
EMAIL_TASK_SOFT_TIME_LIMIT = EMAIL_TASK_TIME_LIMIT - 30


@shared_task(
    bind=True,
    name="surveys.emails_send",
    max_retries=EMAIL_MAX_RETRIES,
    time_limit=EMAIL_TASK_TIME_LIMIT,
    soft_time_limit=EMAIL_TASK_SOFT_TIME_LIMIT,
)
def emails_send(self: Any, email_ids: list[int]) -> dict[str, int]:
    """Send a batch of outbox emails over one connection; retry the transient failures with backoff."""
    try:
        retry = services.outbound_emails_send(email_ids=email_ids)
    except SoftTimeLimitExceeded:
        # A slow server ate the batch's time: the emails not yet sent are queued again (by
        # the service); a new attempt sends those and skips whatever went out already.
        logger.warning("email batch of %s interrupted by the time limit", len(email_ids))
        retry = list(email_ids)
    if retry:
        if self.request.retries < self.max_retries:
            raise self.retry(args=[retry], countdown=_backoff(self.request.retries))
        failed = services.outbound_emails_fail(email_ids=retry)
        logger.error("gave up on %s email(s) after %s attempts", failed, self.request.retries + 1)
    return {"requested": len(email_ids), "to_retry": len(retry)}


@shared_task(name="surveys.emails_requeue_stale")
def emails_requeue_stale() -> list[int]:
    return services.outbound_emails_requeue_stale()


@shared_task(name="surveys.reminders_send_due")
def reminders_send_due() -> list[int]:
    return services.reminders_send_due()


@shared_task(name="surveys.cycles_close_due")
def cycles_close_due() -> list[int]:
    return services.cycles_close_due()
