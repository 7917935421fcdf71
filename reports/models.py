"""Balance reports and coach access."""

from __future__ import annotations
