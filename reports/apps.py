from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Balance reports"

    def ready(self) -> None:
        # Connects the cycle_closed receiver: closing a cycle queues its reports.
        from reports import receivers  # noqa: F401
