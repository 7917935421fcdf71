"""Events other apps react to without ``surveys`` importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by ``cycle_close`` inside its transaction, once per cycle, with ``cycle``.
# The reports app answers it by queuing one report job per subject.
cycle_closed = Signal()
