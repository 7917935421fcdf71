"""The coach's list comes a page at a time, in queries that do not grow with the cycle,
while its summaries count the whole cycle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.pagination import PAGE_SIZE
from reports.models import Report
from tests.reports.helpers import closed_cycle_of_size

pytestmark = pytest.mark.django_db


def counted(client: Client, url: str, **headers: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def row_names(html: str) -> list[str]:
    return re.findall(r'<th scope="row">([^<]+)</th>', html)


@pytest.mark.parametrize("role", ["coach", "manager"])
def test_the_reports_list_runs_the_same_queries_for_3_and_60_subjects(manager: Any, coach: Any, role: str) -> None:
    client = Client()
    client.force_login(coach if role == "coach" else manager)
    small = closed_cycle_of_size(manager, 3, coach)
    three = counted(client, "/reports/")
    small.delete()
    closed_cycle_of_size(manager, 60, coach)
    sixty = [counted(client, "/reports/"), counted(client, "/reports/?page=2")]
    assert sixty == [three, three]
    assert counted(client, "/reports/", **{"HX-Request": "true"}) == three


def test_the_reports_list_shows_a_page_of_rows_and_counts_each_cycle_whole(manager: Any, coach: Any) -> None:
    cycle = closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(coach)
    first = client.get("/reports/").content.decode()
    assert row_names(first) == [f"Person {n:03}" for n in range(PAGE_SIZE)]
    assert "48 of 60 ready." in first
    assert "1–50 of 60 · page 1 of 2" in first and 'href="/reports/?page=2" rel="next"' in first
    second = client.get("/reports/?page=2").content.decode()
    assert row_names(second) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]
    assert "48 of 60 ready." in second and 'href="/reports/" rel="prev"' in second
    # a queued report anywhere in the cycle keeps every page of it polling, on that page
    assert 'id="coach-reports" hx-get="/reports/?page=2" hx-trigger="every 3s"' in second
    fragment = client.get("/reports/?page=2", headers={"HX-Request": "true"}).content.decode()
    assert row_names(fragment) == row_names(second) and "<html" not in fragment
    Report.objects.filter(cycle=cycle).update(status=Report.Status.READY)
    assert "hx-trigger" not in client.get("/reports/?page=2").content.decode()


def test_the_manager_is_told_how_many_have_no_coach_on_every_page(manager: Any) -> None:
    closed_cycle_of_size(manager, 60)
    client = Client()
    client.force_login(manager)
    for url in ("/reports/", "/reports/?page=2"):
        html = client.get(url).content.decode()
        names = ", ".join(f"Person {n:03}" for n in range(10))
        assert f"No coach can read the reports of {names} and 50 others." in html, url


@pytest.mark.parametrize("page", ["abc", "-1", "0"])
def test_a_reports_page_that_is_not_a_whole_number_is_not_found(manager: Any, coach: Any, page: str) -> None:
    closed_cycle_of_size(manager, 3, coach)
    client = Client()
    client.force_login(coach)
    assert client.get("/reports/", {"page": page}).status_code == 404


def test_a_reports_page_past_the_end_is_the_last_page(manager: Any, coach: Any) -> None:
    closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(coach)
    html = client.get("/reports/?page=99999").content.decode()
    assert row_names(html) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]


def test_the_cycle_pages_coach_notice_names_ten_and_counts_the_rest(manager: Any) -> None:
    cycle = closed_cycle_of_size(manager, 60)
    client = Client()
    client.force_login(manager)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(f"/reports/cycles/{cycle.pk}/coaches/notice/").content.decode()
    names = ", ".join(f"Person {n:03}" for n in range(10))
    assert f"Nobody can read the reports of {names} and 50 others yet" in html
    # session, user, cycle, the people without a coach
    assert len(captured) == 4
