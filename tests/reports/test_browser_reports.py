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
