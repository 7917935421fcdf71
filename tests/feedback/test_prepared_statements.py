"""The survey's own statements are prepared on their connection (``DATABASE_PREPARED_STATEMENTS``):
PostgreSQL plans the page's read, the API's link read and the submit's claim once per
connection instead of on every visit."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client, override_settings

from feedback.selectors import _PAGE_SQL
from surveys.models import Cycle
from tests.feedback.helpers import form_data
from tests.feedback.test_views_survey import open_survey

# More runs than psycopg waits for before it prepares a statement.
RUNS = 8


def prepared_on_this_connection() -> list[str]:
    """The statements this connection (the one the test client's requests use) keeps prepared."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [str(statement) for (statement,) in cursor.fetchall()]


def test_the_project_prepares_its_server_bound_statements() -> None:
    assert settings.DATABASE_PREPARED_STATEMENTS is True
    # Django's own, whose values are in their text, are neither prepared nor counted.
    assert settings.DATABASES["default"].get("OPTIONS", {}).get("prepare_threshold") is None


def test_only_the_survey_statements_are_counted_towards_preparing(client: Client, make_link: Any) -> None:
    _, token = make_link()
    assert client.get(open_survey(client, token)).status_code == 200
    # Left off once the page's read is done: the next query Django sends is not counted.
    assert connection.connection.prepare_threshold is None


def test_survey_visits_and_submits_run_statements_prepared_once(client: Client, cycle: Cycle, make_link: Any) -> None:
    links = [make_link(name=f"Rater {n}") for n in range(RUNS)]
    assert prepared_on_this_connection() == []
    pages = [open_survey(client, token) for _, token in links]
    for page in pages:
        assert client.get(page).status_code == 200
    prepared = prepared_on_this_connection()
    # psycopg writes the page's %s as PostgreSQL's $1, and sends the text as it is otherwise.
    assert _PAGE_SQL.replace("%s", "$1") in prepared
    for page in pages:
        assert client.post(page, form_data(cycle)).status_code == 303
    assert any(statement.lstrip().startswith("WITH claimed AS (") for statement in prepared_on_this_connection())


def test_the_api_submit_reads_its_link_with_a_prepared_statement(client: Client, cycle: Cycle, make_link: Any) -> None:
    body = {"ratings": {field.removeprefix("rating-"): 4 for field in form_data(cycle)}, "comments": {}}
    for _, token in [make_link(name=f"Rater {n}") for n in range(RUNS)]:
        response = client.post(f"/api/survey/{token}/responses/", body, content_type="application/json")
        assert response.status_code == 201, response.content
    # the caller's lock-out ($1) read with the link ($2)
    assert any(
        "WHERE address = $1" in statement and "WHERE token_hash = $2" in statement
        for statement in prepared_on_this_connection()
    )


@pytest.mark.django_db
def test_with_prepared_statements_off_nothing_is_prepared(client: Client, cycle: Cycle, make_link: Any) -> None:
    links = [make_link(name=f"Rater {n}") for n in range(RUNS)]
    with override_settings(DATABASE_PREPARED_STATEMENTS=False):
        for _, token in links:
            page = open_survey(client, token)
            assert client.get(page).status_code == 200
            assert client.post(page, form_data(cycle)).status_code == 303
    assert prepared_on_this_connection() == []


@pytest.mark.parametrize(("value", "expected"), [(None, "True"), ("true", "True"), ("false", "False")])
def test_prepared_statements_can_be_turned_off_for_a_pooler(value: str | None, expected: str) -> None:
    env = {name: text for name, text in os.environ.items() if name != "DATABASE_PREPARED_STATEMENTS"}
    if value is not None:
        env["DATABASE_PREPARED_STATEMENTS"] = value
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASE_PREPARED_STATEMENTS)",
        ],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.local"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [expected]


@pytest.mark.django_db(transaction=True)
def test_a_column_changed_under_a_prepared_statement_fails_one_request_then_the_connection_is_replaced() -> None:
    """What a migration run beside live web processes does to their prepared statements: the
    request that meets the change fails, its connection is replaced, the next one works."""
    from django.db import DatabaseError, connections

    from config.database import server_binding_cursor

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE prepared_probe (id int PRIMARY KEY, label varchar(10))")
        cursor.execute("INSERT INTO prepared_probe VALUES (1, 'one')")
    try:

        def read() -> str:
            with server_binding_cursor() as cursor:
                cursor.execute("SELECT label FROM prepared_probe WHERE id = %s", [1])
                return str(cursor.fetchone()[0])

        for _ in range(RUNS):
            assert read() == "one"
        assert "SELECT label FROM prepared_probe WHERE id = $1" in prepared_on_this_connection()
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("ALTER TABLE prepared_probe ALTER COLUMN label TYPE text")
        finally:
            other.close()
        with pytest.raises(DatabaseError, match="cached plan must not change result type"):
            read()
        # What Django does at the end of the request (and before the next one's first query).
        connection.close_if_unusable_or_obsolete()
        assert connection.connection is None
        assert [read() for _ in range(RUNS)] == ["one"] * RUNS
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE prepared_probe")
