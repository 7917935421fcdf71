"""The cycle page and the progress API come a page of subjects at a time, in queries that do
not grow with the cycle, while their summaries count the whole cycle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from config.pagination import PAGE_SIZE
from surveys.models import Cycle, Invitation
from tests.surveys.helpers import cycle_of_size

pytestmark = pytest.mark.django_db


def queries(client: Client | APIClient, url: str, **headers: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), response


def rows(html: str) -> list[str]:
    return re.findall(r'<th scope="row">([^<]+)</th>', html)


def page_queries(client: Client, small: Cycle, large: Cycle, tail: str = "", **headers: str) -> list[int]:
    """Queries of a cycle's page (``tail`` below it) for 3 subjects, for 60, and of its page 2."""
    urls = [f"/cycles/{small.pk}/{tail}", f"/cycles/{large.pk}/{tail}", f"/cycles/{large.pk}/{tail}?page=2"]
    return [queries(client, url, **headers)[0] for url in urls]


@pytest.mark.parametrize("status", [Cycle.Status.DRAFT, Cycle.Status.OPEN, Cycle.Status.CLOSED])
def test_the_cycle_page_runs_the_same_queries_for_3_and_60_subjects(manager: Any, client: Client, status: str) -> None:
    small, large = cycle_of_size(manager, 3, status), cycle_of_size(manager, 60, status)
    client.force_login(manager)
    for headers in ({}, {"HX-Request": "true"}):
        counted = page_queries(client, small, large, **headers)
        assert len(set(counted)) == 1, (headers, counted)


def test_the_cycle_page_shows_a_page_of_subjects_with_links_to_the_others(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60)
    client.force_login(manager)
    first = client.get(f"/cycles/{cycle.pk}/").content.decode()
    assert rows(first) == [f"Person {n:03}" for n in range(PAGE_SIZE)]
    assert "1–50 of 60 · page 1 of 2" in first
    assert f'href="/cycles/{cycle.pk}/?page=2" rel="next"' in first and 'rel="prev"' not in first
    second = client.get(f"/cycles/{cycle.pk}/?page=2").content.decode()
    assert rows(second) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]
    assert f'href="/cycles/{cycle.pk}/" rel="prev"' in second and 'rel="next"' not in second
    # a cycle that fits on one page has no page links at all
    small = cycle_of_size(manager, 3)
    assert 'class="pager"' not in client.get(f"/cycles/{small.pk}/").content.decode()


def test_the_live_progress_polls_the_page_shown(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60)
    client.force_login(manager)
    page = client.get(f"/cycles/{cycle.pk}/?page=2").content.decode()
    assert f'hx-get="/cycles/{cycle.pk}/?page=2" hx-trigger="every 5s"' in page
    assert f'hx-get="/cycles/{cycle.pk}/" hx-trigger="every 5s"' in client.get(f"/cycles/{cycle.pk}/").content.decode()
    fragment = client.get(f"/cycles/{cycle.pk}/?page=2", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment
    assert rows(fragment) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]
    assert f'hx-get="/cycles/{cycle.pk}/?page=2"' in fragment


def test_the_subjects_short_of_k_are_counted_over_the_whole_cycle(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60, Cycle.Status.DRAFT)
    client.force_login(manager)
    second = client.get(f"/cycles/{cycle.pk}/?page=2").content.decode()
    notice = second[second.index('id="short-of-k"') :]
    assert "60 subjects with fewer than 3 anonymous raters in a group." in notice
    # the names listed are those of the page
    assert "Person 055: direct reports 1 invited" in notice and "Person 000:" not in notice


def test_nominations_are_counted_over_the_whole_cycle(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60, Cycle.Status.NOMINATING)
    client.force_login(manager)
    html = client.get(f"/cycles/{cycle.pk}/?page=2").content.decode()
    assert "0 of 60 subjects have sent their list, 0 of 60 lists are approved" in html
    assert "Approve the remaining 60 lists" in html


@pytest.mark.parametrize("page", ["abc", "-1", "0", "1.5", "²", "9" * 40])
def test_a_page_that_is_not_a_whole_number_from_1_is_not_found(manager: Any, client: Client, page: str) -> None:
    cycle = cycle_of_size(manager, 3)
    client.force_login(manager)
    response = client.get(f"/cycles/{cycle.pk}/", {"page": page})
    assert response.status_code == 404
    assert "“page” is a whole number from 1" in response.content.decode()
    assert client.get(f"/cycles/{cycle.pk}/", {"page": page}, headers={"HX-Request": "true"}).status_code == 404


def test_other_not_found_pages_show_no_lookup_detail(manager: Any, client: Client) -> None:
    client.force_login(manager)
    response = client.get("/cycles/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert "matches the given query" not in html


def test_a_page_past_the_end_is_the_last_page(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60)
    client.force_login(manager)
    html = client.get(f"/cycles/{cycle.pk}/?page=99999").content.decode()
    assert rows(html) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]
    assert "page 2 of 2" in html


def test_the_progress_api_runs_the_same_queries_for_3_and_60_subjects(manager: Any) -> None:
    small, large = cycle_of_size(manager, 3), cycle_of_size(manager, 60)
    api = APIClient()
    api.force_authenticate(manager)
    counted = [queries(api, f"/api/cycles/{cycle.pk}/progress/?limit=20")[0] for cycle in (small, large)]
    assert counted[0] == counted[1]


def test_the_progress_api_is_paged_like_the_lists(manager: Any) -> None:
    cycle = cycle_of_size(manager, 60)
    api = APIClient()
    api.force_authenticate(manager)
    body = api.get(f"/api/cycles/{cycle.pk}/progress/?limit=25").json()
    assert set(body) == {"status", "anonymity_min", "emails", "count", "next", "previous", "results"}
    assert body["count"] == 60 and body["previous"] is None
    assert [subject["name"] for subject in body["results"]] == [f"Person {n:03}" for n in range(25)]
    assert body["next"].endswith(f"/api/cycles/{cycle.pk}/progress/?limit=25&offset=25")
    # following ``next`` reaches every subject once, each pooled as before
    names, url = [], f"/api/cycles/{cycle.pk}/progress/?limit=25"
    while url:
        page = api.get(url).json()
        names += [subject["name"] for subject in page["results"]]
        pooled = [subject["anonymous"] for subject in page["results"]]
        assert pooled == [{"invited": 4, "answered": 1, "enough": False}] * len(pooled)
        url = page["next"]
    assert names == [f"Person {n:03}" for n in range(60)]
    # past the end: an empty page whose "previous" goes back to the last items there are
    past = api.get(f"/api/cycles/{cycle.pk}/progress/?limit=25&offset=500").json()
    assert past["results"] == [] and past["count"] == 60 and past["next"] is None
    assert past["previous"].endswith("?limit=25&offset=35")
    assert [subject["name"] for subject in api.get(past["previous"]).json()["results"]][-1] == "Person 059"
    # the default page is the lists' one: 100
    assert len(api.get(f"/api/cycles/{cycle.pk}/progress/").json()["results"]) == 60
    larger = cycle_of_size(manager, 101)
    first = api.get(f"/api/cycles/{larger.pk}/progress/").json()
    assert (len(first["results"]), first["count"]) == (100, 101)
    assert first["next"].endswith(f"/api/cycles/{larger.pk}/progress/?limit=100&offset=100")


@pytest.mark.parametrize(
    ("query", "field"), [("offset=abc", "offset"), ("offset=-1", "offset"), ("limit=0", "limit"), ("limit=x", "limit")]
)
def test_bad_paging_parameters_of_the_progress_api_name_the_field(manager: Any, query: str, field: str) -> None:
    cycle = cycle_of_size(manager, 3)
    api = APIClient()
    api.force_authenticate(manager)
    response = api.get(f"/api/cycles/{cycle.pk}/progress/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_an_offset_past_the_end_is_an_empty_page_that_still_counts(manager: Any) -> None:
    cycle = cycle_of_size(manager, 3)
    api = APIClient()
    api.force_authenticate(manager)
    body = api.get(f"/api/cycles/{cycle.pk}/progress/?offset=99999").json()
    assert body["results"] == [] and body["count"] == 3 and body["next"] is None


def subject_headings(html: str) -> list[str]:
    return re.findall(r'<h2 id="subject-\d+">([^<]+?)(?: <span|</h2>)', html)


@pytest.mark.parametrize("status", [Cycle.Status.DRAFT, Cycle.Status.NOMINATING, Cycle.Status.OPEN])
def test_the_raters_page_runs_the_same_queries_for_3_and_60_subjects(manager: Any, client: Client, status: str) -> None:
    small, large = cycle_of_size(manager, 3, status), cycle_of_size(manager, 60, status)
    client.force_login(manager)
    counted = page_queries(client, small, large, "raters/")
    assert len(set(counted)) == 1, counted


def test_the_raters_page_shows_a_page_of_subjects_and_its_forms_come_back_to_it(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60, Cycle.Status.DRAFT)
    client.force_login(manager)
    first = client.get(f"/cycles/{cycle.pk}/raters/").content.decode()
    assert subject_headings(first) == [f"Person {n:03}" for n in range(PAGE_SIZE)]
    assert "1–50 of 60 · page 1 of 2" in first
    second = client.get(f"/cycles/{cycle.pk}/raters/?page=2").content.decode()
    assert subject_headings(second) == [f"Person {n:03}" for n in range(PAGE_SIZE, 60)]
    # each subject's raters are on the subject's page, and only there
    invitation = Invitation.objects.filter(cycle=cycle, subject__person__name="Person 055").first()
    assert invitation is not None and invitation.rater_email in second and invitation.rater_email not in first
    # removing a rater on page 2 comes back to page 2
    Invitation.objects.filter(pk=invitation.pk).update(status=Invitation.Status.DRAFT)
    action = f"/cycles/{cycle.pk}/raters/{invitation.pk}/remove/?page=2"
    assert f'action="{action}"' in second
    response = client.post(action)
    assert response.status_code == 302 and response["Location"] == f"/cycles/{cycle.pk}/raters/?page=2"
    assert not Invitation.objects.filter(pk=invitation.pk).exists()


def test_the_raters_page_counts_the_subjects_short_of_k_over_the_whole_cycle(manager: Any, client: Client) -> None:
    cycle = cycle_of_size(manager, 60, Cycle.Status.DRAFT)
    client.force_login(manager)
    second = client.get(f"/cycles/{cycle.pk}/raters/?page=2").content.decode()
    notice = second[second.index('id="short-of-k"') :]
    assert notice.startswith('id="short-of-k">60 subjects in this cycle with fewer than 3 anonymous raters')
    assert "those on this page are marked below." in notice.split("</p>")[0]
    assert second.count('<p class="field-error">') == 60 - PAGE_SIZE  # each one of this page marked


@pytest.mark.parametrize("page", ["²", "9" * 5000, "-2", "1", ""])
def test_a_form_posted_with_an_odd_page_comes_back_to_the_first(manager: Any, client: Client, page: str) -> None:
    cycle = cycle_of_size(manager, 3, Cycle.Status.DRAFT)
    client.force_login(manager)
    invitation = Invitation.objects.filter(cycle=cycle).first()
    assert invitation is not None
    response = client.post(f"/cycles/{cycle.pk}/raters/{invitation.pk}/remove/", QUERY_STRING=f"page={page}")
    assert response.status_code == 302 and response["Location"] == f"/cycles/{cycle.pk}/raters/"
