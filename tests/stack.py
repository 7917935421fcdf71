"""For tests that start processes of the stack (gunicorn, Celery) on the test database."""

from __future__ import annotations

import os
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import connection


def stack_database_url(**options: str) -> str:
    """``DATABASE_URL`` pointed at the test run's database (pytest-django's ``test_…`` copy),
    with ``options`` (e.g. ``application_name``) added to its query."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    query = "&".join(part for part in (parts.query, urlencode(options)) if part)
    return urlunsplit(parts._replace(path="/" + str(connection.settings_dict["NAME"]), query=query))
