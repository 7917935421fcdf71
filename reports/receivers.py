"""Reactions to other apps' events; each hands straight over to a service."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from reports.services import report_enqueue_for_cycle
from surveys.models import Cycle
from surveys.signals import cycle_closed


@receiver(cycle_closed, dispatch_uid="reports.enqueue_on_cycle_closed")
def enqueue_reports_on_cycle_closed(sender: Any, cycle: Cycle, **kwargs: Any) -> None:
    report_enqueue_for_cycle(cycle=cycle)
