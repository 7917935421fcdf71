"""The admin and the API docs work in a real browser under the site's Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import TeamFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watch(page: Any) -> list[str]:
    """Console errors and requests the browser refused (a CSP violation logs both)."""
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def refused(problems: list[str]) -> list[str]:
    # The browser's own request for /favicon.ico is the one 404 a page may cause.
    return [problem for problem in problems if "404" not in problem]


def test_the_admin_works_under_the_policy(page: Any, live_server: Any) -> None:
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    TeamFactory(name="Platform", manager=root)
    problems = watch(page)
    page.goto(f"{live_server.url}/admin/")
    page.get_by_label("Username").fill("root")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Site administration").wait_for()
    page.goto(f"{live_server.url}/admin/surveys/team/")
    assert page.locator("h1").inner_text() == "Select team to change"
    # the admin's own scripts run: ticking "select all" ticks the row and counts it
    page.locator("#action-toggle").check()
    assert page.locator("input.action-select").first.is_checked()
    assert "1 of 1 selected" in page.locator(".action-counter").inner_text()
    assert refused(problems) == [], problems


def test_the_api_docs_render_under_the_policy(page: Any, live_server: Any) -> None:
    problems = watch(page)
    page.goto(f"{live_server.url}/api/docs/")
    # Swagger UI built the page from the schema: its start-up script ran, no inline one
    page.locator(".opblock-tag").first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert page.locator(".info .title").inner_text().startswith("Balance 360 API")
    assert refused(problems) == [], problems


def test_live_progress_polls_under_the_policy(page: Any, live_server: Any, manager: Any) -> None:
    # htmx, served from our own origin, polls the progress and swaps it in: no inline
    # script or style (its indicator styles are turned off) for the policy to refuse.
    from datetime import timedelta

    from django.utils import timezone

    from surveys import services
    from surveys.models import Invitation
    from tests.factories import PersonFactory, default_questionnaire

    default_questionnaire()
    team = TeamFactory(manager=manager)
    people = [PersonFactory(team=team, name=name, email=f"{name.lower()}@csp.test") for name in "ABCD"]
    cycle = services.cycle_create(
        team=team, by=manager, name="Live", deadline=timezone.now() + timedelta(days=3), people=people[:1]
    )
    services.cycle_launch(cycle=cycle, by=manager)
    problems = watch(page)
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if request.headers.get("hx-request") else None)
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/cycles/{cycle.pk}/")
    page.evaluate("window.__stillTheSamePage = true")
    page.get_by_text("0 of 3 answered").wait_for()
    Invitation.objects.filter(cycle=cycle, group="peer", rater_email="b@csp.test").update(status="completed")
    page.get_by_text("1 of 3 answered").wait_for(timeout=15_000)
    assert page.evaluate("window.__stillTheSamePage === true")
    assert polls and all(url.endswith(f"/cycles/{cycle.pk}/") for url in polls)
    assert refused(problems) == [], problems
