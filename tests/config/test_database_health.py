"""The per-request check of a persistent database connection (config/postgresql/base.py):
it needs no round trip, and it still finds every connection the server has cut (through
the real stack: tests/config/test_durability.py)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from django.db import DataError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from config.postgresql.base import IDLE_SECONDS, DatabaseWrapper

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid(wrapper: BaseDatabaseWrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


def _from_another_connection(sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, parameters)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        other.close()


def _terminate(pids: list[int]) -> None:
    """What a database restart or an operator's pg_terminate_backend does; returns once they are gone."""
    _from_another_connection("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", [pids])
    deadline = time.monotonic() + 10
    while _from_another_connection("SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", [pids]):
        assert time.monotonic() < deadline, "the terminated backends did not exit"
        time.sleep(0.02)


def test_the_project_runs_on_the_backend_with_this_check() -> None:
    assert isinstance(connections["default"], DatabaseWrapper)
    assert connections["default"].settings_dict["CONN_HEALTH_CHECKS"] is True


def _last_statement(pid: int) -> str:
    ((last,),) = _from_another_connection("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
    return str(last)


def test_a_healthy_connection_in_use_is_usable_without_a_statement_sent() -> None:
    pid = _backend_pid(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement before the check'")
    connections["default"].checked_at = time.monotonic()  # checked a moment ago, as under load
    # when
    usable = connection.is_usable()
    # then: the server saw no statement after ours (Django's own check sends SELECT 1)
    assert usable
    assert _last_statement(pid) == "SELECT 'the last statement before the check'"


def test_a_connection_idle_for_a_while_is_checked_with_a_round_trip() -> None:
    # A cut without a word on the socket (a failover behind the same address) comes with a
    # pause: after one, the check sends something, and a reset would show.
    pid = _backend_pid(connection)
    connections["default"].checked_at = time.monotonic() - IDLE_SECONDS - 1
    assert connection.is_usable()
    assert _last_statement(pid) == "SELECT 1"


def test_a_connection_the_server_cut_is_not_usable() -> None:
    pid = _backend_pid(connection)
    _terminate([pid])
    assert not connection.is_usable()
    # Django's check before a request's first statement then drops it, and that statement
    # runs on a new connection.
    connection.health_check_enabled, connection.health_check_done = True, False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    assert _backend_pid(connection) != pid


def test_a_connection_in_a_failed_transaction_is_not_usable() -> None:
    with transaction.atomic():
        with contextlib.suppress(DataError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        # the transaction is aborted until it rolls back: no statement would run on it
        assert not connection.is_usable()
        transaction.set_rollback(True)
    assert connection.is_usable()
