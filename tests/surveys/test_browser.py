"""The manager's pages in a real browser, at phone width and with the keyboard."""

from __future__ import annotations

from typing import Any

import pytest

from surveys.models import Cycle, Invitation, Team
from tests.surveys.helpers import cycle_of_size, team_build

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page: Any, live_server: Any) -> None:
    page.set_viewport_size({"width": 375, "height": 740})
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/")


def _fits_the_phone(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_manager_builds_a_team_and_launches_a_cycle_on_a_phone(page: Any, live_server: Any, manager: Any) -> None:
    _sign_in(page, live_server)
    page.get_by_role("link", name="Teams").first.click()
    page.get_by_label("Team name").fill("Phone team")
    page.get_by_role("button", name="Create team").click()
    team = Team.objects.get(name="Phone team")
    for name in ("Rae", "Sol", "Tia", "Uma"):
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Email").fill(f"{name.lower()}@phone.test")
        page.get_by_role("button", name="Add person").click()
        page.wait_for_selector(f"text={name} added.")
    assert team.people.count() == 4
    assert _fits_the_phone(page)
    page.get_by_role("link", name="New review cycle").click()
    page.get_by_label("Name", exact=True).fill("Phone cycle")
    page.get_by_label("Deadline", exact=True).fill("2099-06-30T17:00")
    page.get_by_role("button", name="Create draft").click()
    page.wait_for_selector("text=Draft cycle created")
    cycle = Cycle.objects.get(name="Phone cycle")
    assert cycle.subjects.count() == 4
    assert _fits_the_phone(page)
    # launch with the keyboard only, through the confirmation page
    page.get_by_role("link", name="Launch and email the raters").focus()
    page.keyboard.press("Enter")
    button = page.get_by_role("button", name="Yes, launch and email the raters")
    button.focus()
    assert _fits_the_phone(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Launched")
    cycle.refresh_from_db()
    assert cycle.status == Cycle.Status.OPEN
    assert not cycle.invitations.exclude(status=Invitation.Status.OPEN).exists()
    assert page.get_by_role("progressbar", name="0% answered").count() == 4
    assert _fits_the_phone(page)


def test_bad_cycle_input_is_announced_and_kept(page: Any, live_server: Any, manager: Any) -> None:
    team = team_build(manager)
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/teams/{team.pk}/cycles/new/")
    page.get_by_label("Name", exact=True).fill("Keep this name")
    page.get_by_label("Deadline", exact=True).fill("2099-06-30T17:00")
    page.get_by_label("Anonymity minimum (k)").fill("1")
    page.get_by_role("button", name="Create draft").click()
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_label("Name", exact=True).input_value() == "Keep this name"
    assert "can never be below 2" in page.content()
    assert not Cycle.objects.exists()


def test_the_live_progress_keeps_the_page_shown_when_it_updates(page: Any, live_server: Any, manager: Any) -> None:
    cycle = cycle_of_size(manager, 60)
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/cycles/{cycle.pk}/?page=2")
    rows = page.locator("#progress tbody th[scope=row]")
    assert rows.first.inner_text() == "Person 050" and rows.count() == 10
    assert _fits_the_phone(page)
    # htmx polls the page shown and swaps the table in place: still page 2
    with page.expect_response(lambda response: response.request.headers.get("hx-request") == "true") as polled:
        pass
    assert polled.value.url == f"{live_server.url}/cycles/{cycle.pk}/?page=2"
    page.wait_for_load_state("networkidle")
    assert rows.first.inner_text() == "Person 050" and rows.count() == 10
    assert page.locator("#progress").get_attribute("hx-get") == f"/cycles/{cycle.pk}/?page=2"
    # and the page links lead back to the first page
    page.get_by_role("link", name="Previous").click()
    page.wait_for_url(f"{live_server.url}/cycles/{cycle.pk}/")
    assert rows.first.inner_text() == "Person 000" and rows.count() == 50
