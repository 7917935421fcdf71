from __future__ import annotations

from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Anonymous feedback"

    def ready(self) -> None:
        from feedback.receivers import cycle_closed_unseal_answers
        from surveys.signals import cycle_closed

        cycle_closed.connect(cycle_closed_unseal_answers, dispatch_uid="feedback.cycle_closed_unseal_answers")
