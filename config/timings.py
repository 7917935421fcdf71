"""The job and Celery timings, checked against each other when the settings load."""

from __future__ import annotations

from typing import Any


def timing_check(values: dict[str, Any]) -> None:
    """The job timings depend on each other; a setting that breaks the chain is refused at start-up.

    two SMTP timeouts < lease; sweep ≤ lease (an orphan waits at most lease + sweep);
    one run (JOB_RUN_SECONDS) plus one batch fit in the soft time limit; soft < hard time
    limit < visibility timeout (Redis never hands a running message to a second worker).
    """
    lease, sweep, run = values["JOB_LEASE_SECONDS"], values["JOB_SWEEP_SECONDS"], values["JOB_RUN_SECONDS"]
    soft, hard = values["CELERY_TASK_SOFT_TIME_LIMIT"], values["CELERY_TASK_TIME_LIMIT"]
    visibility = values["CELERY_BROKER_VISIBILITY_TIMEOUT"]
    email_timeout = values.get("EMAIL_TIMEOUT", 0)
    problems = []
    if email_timeout * 2 >= lease:
        # Connecting and sending one email may take two timeouts; a claim must outlive them.
        problems.append(f"JOB_LEASE_SECONDS ({lease}) must exceed twice EMAIL_TIMEOUT ({email_timeout})")
    if sweep > lease:
        problems.append(f"JOB_SWEEP_SECONDS ({sweep}) must not exceed JOB_LEASE_SECONDS ({lease})")
    if run * 2 > soft:
        problems.append(f"JOB_RUN_SECONDS ({run}) must stay below half the soft time limit ({soft})")
    if not soft < hard < visibility:
        problems.append(
            f"the soft time limit ({soft}) < CELERY_TASK_TIME_LIMIT ({hard}) < CELERY_VISIBILITY_TIMEOUT "
            f"({visibility}) must hold"
        )
    if problems:
        raise ValueError("Job timings: " + "; ".join(problems) + ".")
