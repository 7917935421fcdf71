"""The coach's list, the team view and the team API come a page at a time, in queries that
do not grow with the cycle, while their summaries count the whole cycle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from config.pagination import PAGE_SIZE
from reports.models import Report
from tests.reports.helpers import closed_cycle_of_size
from tests.reports.surfaces import crawl
from tests.surveys.helpers import cycle_of_size

pytestmark = pytest.mark.django_db


def counted(client: Client | APIClient, url: str, **headers: str) -> int:
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
    response = client.get("/reports/", {"page": page})
    assert response.status_code == 404
    assert "“page” is a whole number from 1" in response.content.decode()


def test_a_reports_page_past_the_end_is_the_last_page(manager: Any, coach: Any) -> None:
    closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(coach)
    html = client.get("/reports/?page=99999").content.decode()
    assert row_names(html) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]


def test_the_team_view_runs_the_same_queries_for_3_and_60_subjects(manager: Any, coach: Any) -> None:
    small, large = closed_cycle_of_size(manager, 3, coach), closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(coach)
    urls = [f"/reports/cycles/{small.pk}/team/", f"/reports/cycles/{large.pk}/team/"]
    urls.append(f"/reports/cycles/{large.pk}/team/?page=2")
    assert len({counted(client, url) for url in urls}) == 1


def test_the_team_view_pages_the_plane_its_legend_and_the_table(manager: Any, coach: Any) -> None:
    cycle = closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(coach)
    url = f"/reports/cycles/{cycle.pk}/team/"
    for page, names in ((1, range(PAGE_SIZE)), (2, range(PAGE_SIZE, 60))):
        html = client.get(url, {"page": page}).content.decode()
        # the whole cycle counted, whichever page
        assert "60 people in this cycle: 41 with a point, 7 not shown (too few anonymous raters), " in html
        assert "12 reports not ready." in html
        assert row_names(html) == [f"Person {n:03}" for n in names]
        with_point = [f"Person {n:03}" for n in names if n % 5 != 4 and n % 7 != 6]
        plane = html[html.index('class="plane-chart') : html.index("</figure>")]
        markers = re.findall(r'title="([^"]+)" aria-label="[^"]+">(\d+)</a>', plane)
        # every point of the page is on its plane, numbered from 1, each linked to its report
        assert sorted(markers, key=lambda marker: int(marker[1])) == [
            (name, str(number)) for number, name in enumerate(with_point, start=1)
        ]
        legend = html[html.index('class="team-legend"') : html.index("</ol>")]
        assert re.findall(r'<a href="/reports/\d+/">([^<]+)</a>', legend) == with_point
    assert f'href="{url}?page=2" rel="next"' in client.get(url).content.decode()
    assert f'href="{url}" rel="prev"' in client.get(url, {"page": 2}).content.decode()
    assert client.get(url, {"page": "abc"}).status_code == 404
    assert "people 51–60" in client.get(url, {"page": 7}).content.decode()


def test_the_team_api_is_paged_in_constant_queries(manager: Any, coach: Any) -> None:
    small, large = closed_cycle_of_size(manager, 3, coach), closed_cycle_of_size(manager, 60, coach)
    api = APIClient()
    api.force_authenticate(coach)
    url = f"/api/reports/cycles/{large.pk}/team/"
    assert counted(api, f"/api/reports/cycles/{small.pk}/team/") == counted(api, url)
    body = api.get(url, {"limit": 25}).json()
    assert body["count"] == 60 and len(body["results"]) == 25
    names, next_url = [], f"{url}?limit=25"
    while next_url:
        page = api.get(next_url).json()
        names += [point["name"] for point in page["results"]]
        next_url = page["next"]
    assert names == [f"Person {n:03}" for n in range(60)]
    assert api.get(url, {"offset": "abc"}).json() == {"offset": ["A whole number from 0."]}
    assert api.get(url, {"limit": "-1"}).json() == {"limit": ["A whole number from 1."]}
    past_the_end = api.get(url, {"offset": 99999}).json()
    assert (past_the_end["results"], past_the_end["next"]) == ([], None)
    assert past_the_end["count"] == api.get(url).json()["count"] > 0


def test_the_team_view_and_api_stay_closed_to_the_cycles_manager(manager: Any, coach: Any) -> None:
    cycle = closed_cycle_of_size(manager, 60, coach)
    client = Client()
    client.force_login(manager)
    for page in ("1", "2", "abc"):
        assert client.get(f"/reports/cycles/{cycle.pk}/team/", {"page": page}).status_code == 404
        assert client.get(f"/api/reports/cycles/{cycle.pk}/team/", {"offset": page}).status_code == 404


def test_the_cycle_pages_coach_notice_names_ten_and_counts_the_rest(manager: Any) -> None:
    cycle = closed_cycle_of_size(manager, 60)
    client = Client()
    client.force_login(manager)
    with CaptureQueriesContext(connection) as captured:
        html = client.get(f"/reports/cycles/{cycle.pk}/coaches/notice/").content.decode()
    names = ", ".join(f"Person {n:03}" for n in range(10))
    assert f"Nobody can read the reports of {names} and 50 others yet" in html
    # session, user, cycle, the people without a coach (their coaches' addresses, then the people)
    assert len(captured) == 5
    # the coaches page says it the same way, rather than listing all sixty
    page = client.get(f"/reports/cycles/{cycle.pk}/coaches/").content.decode()
    assert f"Without a coach: {names} and 50 others." in page


def test_the_surfaces_crawl_follows_every_page(manager: Any) -> None:
    cycle = cycle_of_size(manager, 60)
    client = Client()
    client.force_login(manager)
    seen = crawl(client, [f"/cycles/{cycle.pk}/", f"/api/cycles/{cycle.pk}/progress/?limit=25"])
    assert seen[f"/cycles/{cycle.pk}/?page=2"][0] == 200
    assert f"/api/cycles/{cycle.pk}/progress/?limit=25&offset=50" in seen
    pages = " ".join(text for url, (_, text) in seen.items() if url.startswith(f"/cycles/{cycle.pk}/"))
    api = " ".join(text for url, (_, text) in seen.items() if url.startswith("/api/"))
    for n in range(60):
        assert f"Person {n:03}" in pages and f"Person {n:03}" in api


def test_the_coach_assignments_api_is_paged_in_a_stable_order(manager: Any, coach: Any) -> None:
    from reports.models import CoachAssignment

    cycle = cycle_of_size(manager, 3)
    subjects = list(cycle.subjects.order_by("person__name"))
    CoachAssignment.objects.bulk_create(
        [CoachAssignment(cycle=cycle, coach=coach, subject=subject) for subject in reversed(subjects)]
    )
    api = APIClient()
    api.force_authenticate(manager)
    url = f"/api/reports/cycles/{cycle.pk}/coaches/"
    first = api.get(url, {"limit": 2}).json()
    assert first["count"] == 3 and first["previous"] is None and first["next"]
    rest = api.get(url, {"limit": 2, "offset": 2}).json()
    names = [row["subject_name"] for row in first["results"] + rest["results"]]
    assert names == ["Person 000", "Person 001", "Person 002"]
    assert counted(api, url) == counted(api, f"{url}?offset=2")
