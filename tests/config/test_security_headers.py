"""Every response carries the Content-Security-Policy and the other security headers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def assert_secured(response: Any, where: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp and "script-src 'self'" in csp, where
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp, where
    assert "http" not in csp and "*" not in csp, where
    # in whatever order the directives come
    inline = [part.strip() for part in csp.split(";") if "unsafe-inline" in part]
    # only the API docs (our own schema, no user content) allow inline styles, never scripts
    assert inline == (["style-src 'self' 'unsafe-inline'"] if where.startswith("/api/docs/") else []), where
    for header, value in HEADERS.items():
        if header == "Referrer-Policy" and response.get(header) == "no-referrer":
            continue  # the token pages are stricter still
        assert response.get(header) == value, (where, header)
    assert "camera=()" in response.get("Permissions-Policy", ""), where


def every_route(patterns: list[Any] | None = None, prefix: str = "") -> list[str]:
    """Every URL pattern, its parameters filled with 1 (the answer may be 404: it is still a response)."""
    found: list[str] = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found += every_route(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            found.append(route)
    return found


def filled(route: str) -> str:
    import re

    path = re.sub(r"<(?:int:)?(\w+)>", "1", route.replace("^", "").replace("$", ""))
    path = re.sub(r"<str:(\w+)>", "not-a-real-value-123", path)
    path = re.sub(r"<path:(\w+)>", "x", path)
    return "/" + re.sub(r"\(\?P<\w+>[^)]*\)", "1", path).replace("\\", "")


# /healthz is answered by the first middleware, before any other (config.middleware): a
# JSON probe for containers, never a page a browser renders.
ROUTES = sorted({filled(route) for route in every_route()} - {"/healthz"})


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_answers_with_the_security_headers(client: Client, path: str) -> None:
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert_secured(client.get(path), path)


def test_the_pages_people_use_carry_the_policy(client: Client, manager: Any) -> None:
    assert_secured(client.get("/accounts/login/"), "login")
    client.force_login(manager)
    for path in ["/", "/teams/", "/cycles/", "/reports/", "/api/docs/", "/api/docs/?script="]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert_secured(response, path)
    assert "img-src 'self' data:" in client.get("/api/docs/")["Content-Security-Policy"]


def test_json_and_error_answers_carry_them_too(client: Client) -> None:
    for path in ["/api/teams/", "/api/nothing/", "/nothing/", "/s/not-a-real-link-123/"]:
        assert_secured(client.get(path), path)
