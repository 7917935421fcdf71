"""A cursor that sends its parameters apart from the statement, bytes as bytes.

Django's PostgreSQL backend binds parameters on the client by default: psycopg writes
each value into the SQL text, a ``bytea`` as a hex literal twice its size that the server
then parses back. For a sealed answer (``feedback.sealing``, tens of kilobytes) that
round trip through text cost more than everything else the INSERT does. This cursor binds
on the server (the extended protocol), so a ``%b`` parameter travels in binary as it is,
and psycopg prepares a statement once a connection has run it five times, so that
PostgreSQL plans it once per connection (``DATABASE_PREPARED_STATEMENTS`` in the settings).

Preparing is switched on for these statements only, while they run: Django's own queries
are bound on the client, their values written into their text, and psycopg counting them
towards preparing would keep the last hundred of those texts — names, emails and all — in
the process, and push these statements out of its count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, NotSupportedError, connections
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

from config.postgresql.base import DatabaseWrapper

# The SQLSTATE of PostgreSQL's refusal to run a prepared statement whose result type changed.
FEATURE_NOT_SUPPORTED = "0A000"
# Runs of one statement on a connection before psycopg prepares it (psycopg's own default).
PREPARE_THRESHOLD = 5


@contextmanager
def server_binding_cursor() -> Iterator[CursorWrapper]:
    """A cursor on Django's connection (its transaction, its error wrapping, its query log)
    whose parameters are bound on the server."""
    # The backend itself rather than ``connection``: every attribute read through that
    # proxy looks the backend up again in a context-local mapping.
    backend = connections[DEFAULT_DB_ALIAS]
    backend.close_if_health_check_failed()
    if backend.connection is None:
        backend.ensure_connection()
    backend.validate_thread_sharing()
    database = backend.connection
    raw = psycopg.Cursor(database)
    cursor = (CursorDebugWrapper if backend.queries_logged else CursorWrapper)(raw, backend)
    database.prepare_threshold = PREPARE_THRESHOLD if settings.DATABASE_PREPARED_STATEMENTS else None
    try:
        with cursor:
            yield cursor
    except NotSupportedError as error:
        # "cached plan must not change result type": a column read by a statement prepared
        # on this connection changed type. psycopg would send the same prepared statement
        # again and again; Django replaces the connection before its next request's first
        # query (``is_usable`` in config/postgresql/base.py), and the new one prepares afresh.
        if getattr(error.__cause__, "sqlstate", None) == FEATURE_NOT_SUPPORTED and isinstance(backend, DatabaseWrapper):
            backend.plans_outdated = True
        raise
    finally:
        database.prepare_threshold = None
