from __future__ import annotations

from typing import Any

import pytest

from reports.models import CoachAssignment, Report

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_coach_reaches_a_report_on_a_phone_with_the_keyboard(
    page: Any, live_server: Any, coach: Any, stored_report: Report, tmp_path: Any
) -> None:
    CoachAssignment.objects.create(coach=coach, cycle=stored_report.cycle)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/accounts/login/?next=/reports/")
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/reports/")
    link = page.get_by_role("link", name="View the report for Jonas Berg")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/reports/{stored_report.id}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Balance report: Jonas Berg"
    plane = page.get_by_role("img", name="Management and leadership indices: self and others")
    assert plane.is_visible()
    # nothing wider than the phone's screen: the charts scale down
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
    assert page.get_by_role("link", name="Download PDF").get_attribute("href") == f"/reports/{stored_report.id}/pdf/"


def _sign_in(page: Any, live_server: Any, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.get_by_label("Username").fill("charlie")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}{next_url}")


def test_the_web_report_reads_at_desktop_and_phone_widths(
    page: Any, live_server: Any, coach: Any, stored_report: Report, artifacts: Any
) -> None:
    CoachAssignment.objects.create(coach=coach, cycle=stored_report.cycle)
    url = f"/reports/{stored_report.id}/"
    _sign_in(page, live_server, url)
    for width, height in ((1440, 900), (375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}{url}")
        # the story comes first: the plane and the summary, then what to work on
        plane = page.get_by_role("img", name="Management and leadership indices: self and others")
        assert plane.is_visible()
        box = plane.bounding_box()
        assert box["width"] >= min(0.3 * width, 300)
        summary = page.locator(".summary p").first
        assert summary.inner_text() == stored_report.data["reading"]["summary"][0]
        assert page.get_by_role("heading", name="What to work on").is_visible()
        assert page.get_by_role("heading", name="How to read this report").is_visible()
        # nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        # the self and Others labels on the plane do not print over each other
        labels = [page.locator(f".plane-label.{kind}").bounding_box() for kind in ("self", "others")]
        first, second = labels
        assert (
            first["x"] + first["width"] <= second["x"]
            or second["x"] + second["width"] <= first["x"]
            or first["y"] + first["height"] <= second["y"]
            or second["y"] + second["height"] <= first["y"]
        )
        page.screenshot(path=str(artifacts / f"report-{width}.png"), full_page=True)
    assert (artifacts / "report-1440.png").stat().st_size > 10_000
    assert (artifacts / "report-375.png").stat().st_size > 10_000


def test_the_team_balance_plane_uses_the_width_and_keeps_every_point_apart_and_linked(
    page: Any, live_server: Any, coach: Any, stored_report: Report, artifacts: Any
) -> None:
    from tests.factories import PersonFactory, SubjectFactory
    from tests.reports.helpers import answers_create, stored_report_create

    cycle = stored_report.cycle
    CoachAssignment.objects.create(coach=coach, cycle=cycle)
    # five more people with the same answers: five points on the very same spot
    for name in ("Ada Lind", "Bo Sand", "Cleo Ries", "Dan Moe", "Eva Holm"):
        subject = SubjectFactory(cycle=cycle, person=PersonFactory(team=cycle.team, name=name))
        answers_create(subject, comments=False)
        stored_report_create(subject)
    url = f"/reports/cycles/{cycle.id}/team/"
    _sign_in(page, live_server, url)
    for width, height in ((1440, 900), (375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}{url}")
        plane = page.locator(".plane-area")
        assert plane.bounding_box()["width"] >= (0.55 if width > 1000 else 0.8) * width
        markers = page.locator("a.plane-mark.person")
        assert markers.count() == 6
        boxes = [markers.nth(index).bounding_box() for index in range(6)]
        for index, first in enumerate(boxes):
            for second in boxes[index + 1 :]:
                assert abs(first["x"] - second["x"]) >= first["width"] * 0.9 or abs(first["y"] - second["y"]) >= 1
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(artifacts / f"team-{width}.png"), full_page=True)
    # each point opens its person's report
    first = markers.first
    name = first.get_attribute("aria-label")
    first.click()
    page.wait_for_url(f"{live_server.url}/reports/*/")
    assert page.get_by_role("heading", level=1).inner_text() == f"Balance report: {name}"


def test_the_team_view_of_a_large_cycle_pages_its_plane_and_fits_the_phone(
    page: Any, live_server: Any, coach: Any, manager: Any, artifacts: Any
) -> None:
    from tests.reports.helpers import closed_cycle_of_size

    cycle = closed_cycle_of_size(manager, 60, coach)
    url = f"/reports/cycles/{cycle.id}/team/"
    _sign_in(page, live_server, url)
    for width, height in ((1440, 900), (375, 812)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}{url}")
        # the first 50 people: 34 of them have a point, numbered 1 to 34, each linked
        markers = page.locator("a.plane-mark.person")
        assert markers.count() == 34
        assert sorted(int(markers.nth(index).inner_text()) for index in range(34)) == list(range(1, 35))
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=str(artifacts / f"team-paged-{width}.png"), full_page=True)
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(f"{live_server.url}{url}?page=2")
    assert page.locator("a.plane-mark.person").count() == 7
    assert "60 people in this cycle: 41 with a point" in page.locator("#team-summary").inner_text()
