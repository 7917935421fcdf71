"""Django's PostgreSQL backend, with a health check that costs no round trip.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before the first query of
each request, so that one cut by a database restart, a failover or ``pg_terminate_backend``
is replaced silently instead of failing that request. Its check is ``SELECT 1``: a round
trip to the server on every request that touches the database — on the survey page as much
as the page's own query.

A connection the server has dropped says so on its socket: the server sends its farewell
(``FATAL: terminating connection``) and closes, so the socket of an idle connection becomes
readable. A healthy idle connection has nothing to read (this service listens for no
notifications). So this check looks at the socket, without waiting, and at what libpq
already knows; anything unexpected counts as unusable and costs one new connection.

A connection whose other end vanished without a word — a failover to another machine
behind the same address, a firewall that forgot it — shows nothing on its socket; only
sending something finds out (the new machine answers with a reset). Such a cut comes with
a pause, so a connection idle for longer than ``IDLE_SECONDS`` is checked with Django's
``SELECT 1`` as before; a busy one, checked every few milliseconds, never pays it.
"""

from __future__ import annotations

import select
import time

from django.db.backends.postgresql import base
from psycopg import pq

_USABLE_STATES = (pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS)
# A connection not checked for this long gets a round trip as well.
IDLE_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    """What ``ENGINE = "config.postgresql"`` loads: Django's own, but for ``is_usable``."""

    checked_at: float | None = None
    # Set by ``config.database`` when PostgreSQL refused a statement this connection had
    # prepared because a column it reads changed type (a migration run while the connection
    # was open): it would refuse it on every later run too, so the connection is replaced
    # at the next check (the end of the request, or the next request's first query).
    plans_outdated = False

    def is_usable(self) -> bool:
        if self.connection is None or self.plans_outdated:
            return False
        pgconn = self.connection.pgconn
        if self.connection.broken or pgconn.status != pq.ConnStatus.OK:
            return False
        if pgconn.transaction_status not in _USABLE_STATES:
            return False
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        # Readable (the server's farewell, or the end of the stream), hung up or in error: gone.
        if poller.poll(0):
            return False
        now = time.monotonic()
        idle = self.checked_at is None or now - self.checked_at > IDLE_SECONDS
        self.checked_at = now
        return super().is_usable() if idle else True

    def connect(self) -> None:
        super().connect()
        self.checked_at = time.monotonic()
        self.plans_outdated = False
