"""Which database errors are an outage (503, try again) and which are bugs (500, look into it)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection, connections, transaction

from config.exceptions import database_lost


@pytest.mark.django_db
def test_a_statement_timeout_is_not_an_outage() -> None:
    with pytest.raises(OperationalError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1")
        cursor.execute("SELECT pg_sleep(1)")
    assert not database_lost(caught.value)


@pytest.mark.django_db(transaction=True)
def test_a_terminated_connection_is_an_outage() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    # another connection of the same database cuts this one, as pg_terminate_backend does
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    with pytest.raises(OperationalError) as caught, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    connection.close()
    assert database_lost(caught.value)


def test_errors_that_are_not_the_database_are_not_an_outage() -> None:
    assert not database_lost(ValueError("no"))
    assert not database_lost(None)
