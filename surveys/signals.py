"""Events other apps react to without ``surveys`` importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ``cycle_close`` inside its transaction, once per cycle, with ``cycle``.
# The reports app answers it by queuing one report job per subject.
cycle_closed = Signal()


class CloseRefused(Exception):
    """Raised by a ``cycle_closed`` receiver that cannot do its part; the close rolls back
    and the cycle stays open, with this message for the manager."""
