"""The survey page: what it says, submitting, errors that keep everything typed, decline, CSRF."""

from __future__ import annotations

import gzip
import re
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.test.utils import override_script_prefix

import config.forms
from config.forms import FORM_CONTENT_TYPE, form_fields
from feedback.browser import COOKIE_NAME, survey_browser_decode
from feedback.models import SealedAnswer
from surveys.models import Cycle, Group, Invitation
from tests.feedback.helpers import form_data, item_codes, opened_answers, opened_declines
from tests.feedback.test_views_link import assert_survey_headers


def open_survey(client: Client, token: str) -> str:
    """Follow the emailed link; returns the survey page's URL."""
    response = client.get(f"/s/{token}/")
    assert response.status_code == 303
    return str(response["Location"])


def test_the_page_says_whom_in_which_role_and_the_anonymity_promise_with_k(
    client: Client, invitation: Invitation, token: str
) -> None:
    html = client.get(open_survey(client, token)).content.decode()
    assert "<h1>You are rating Jonas Berg as a peer</h1>" in html
    assert "Your answers are anonymous" in html
    assert "answers from peers count only when at least 4 of them answered" in html  # the cycle's k
    assert "sealed (encrypted) the moment you submit them" in html
    assert invitation.cycle.deadline.strftime("%Y") in html
    assert '<time datetime="' in html


@pytest.mark.parametrize(
    ("group", "role", "promise"),
    [
        (Group.SELF, "You are rating yourself, Priya Nair", "Your answers are identified"),
        (Group.MANAGER, "You are rating Priya Nair as their manager", "Your answers are identified"),
        (Group.DIRECT_REPORT, "You are rating Priya Nair as a direct report", "from direct reports count only"),
        (
            Group.OUTSIDE,
            "You are rating Priya Nair as someone who works with them from outside the team",
            "from outside raters count only",
        ),
    ],
)
def test_the_promise_is_stated_honestly_per_group(
    client: Client, make_link: Any, group: str, role: str, promise: str
) -> None:
    _, token = make_link(group=group)
    html = client.get(open_survey(client, token)).content.decode()
    assert role in html
    assert promise in html
    if group in (Group.SELF, Group.MANAGER):
        assert "anonymous" not in html.lower()


@pytest.mark.parametrize(
    ("source", "counted"), [(Invitation.Source.NOMINATED, False), (Invitation.Source.MANAGER, True)]
)
def test_an_outside_rater_the_person_nominated_is_told_their_answers_count_in_no_score(
    client: Client, make_link: Any, source: str, counted: bool
) -> None:
    # Their answers count in no figure (the person could have given an address of their own):
    # promising them a place in the figures once k answered would be untrue. Page and API alike.
    _, token = make_link(group=Group.OUTSIDE, source=source)
    page = " ".join(unescape(client.get(open_survey(client, token)).content.decode()).split())
    api = client.get(f"/api/survey/{token}/").json()["anonymity"]["statement"]
    for text in (page, api):
        assert ("from outside raters count only when at least" in text) is counted
        assert ("Priya Nair named you as a rater" in text) is not counted
        assert ("count in no score of the report, and their comments are not quoted" in text) is not counted


def test_the_manager_is_told_their_answers_also_count_in_others(client: Client, make_link: Any) -> None:
    # The report's Others figure is computed from the manager and the shown anonymous
    # raters together: promising the manager "not pooled" would be untrue.
    _, token = make_link(group=Group.MANAGER)
    text = unescape(client.get(open_survey(client, token)).content.decode())
    assert "Priya Nair's coach sees them as the manager's own view" in text
    assert "also part of the report's combined “Others” figures" in text
    assert "never Priya Nair's self-assessment" in text
    assert "not pooled" not in text


def test_items_are_grouped_by_dimension_with_labelled_radios_and_cant_say(
    client: Client, invitation: Invitation, token: str
) -> None:
    html = client.get(open_survey(client, token)).content.decode()
    dimension_legends = re.findall(r'<fieldset class="dimension">\s*<legend>([^<]+)</legend>', html)
    assert dimension_legends == [
        "Planning &amp; budgeting",
        "Organizing &amp; staffing",
        "Controlling &amp; problem solving",
        "Establishing direction",
        "Aligning people",
        "Motivating &amp; inspiring",
    ]
    assert html.count('<fieldset class="item"') == 30
    code = item_codes(invitation.cycle)[0]
    for value in ("1", "2", "3", "4", "5", "cant_say"):
        assert f'id="rating-{code}-{value}"' in html
        assert f'<label for="rating-{code}-{value}">' in html
    assert '<span class="number">1</span> <span class="choice-text">Strongly disagree</span>' in html
    assert '<span class="number">5</span> <span class="choice-text">Strongly agree</span>' in html
    # phones show the numbers only: the scale is spelled out once per side
    assert html.count("1 = strongly disagree · 5 = strongly agree · ? = can&#x27;t say") == 2
    assert "Can&#x27;t say" in html
    assert "0</span> of 30 statements answered" in html
    assert '<progress id="survey-progress-bar" max="30" value="0"' in html
    for name in ("management", "leadership", "keep_doing", "start_doing"):
        assert f'<label for="comment-{name}">' in html
    assert 'name="reason"' in html
    assert '<meta name="viewport"' in html


def test_the_page_loads_nothing_from_third_parties(client: Client, token: str) -> None:
    response = client.get(open_survey(client, token))
    html = response.content.decode()
    assert '<script src="/static/js/survey.js" defer></script>' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script>" not in html and "style=" not in html  # nothing inline that CSP would have to allow
    assert_survey_headers(response)


def test_static_files_of_the_page_are_served_locally(client: Client) -> None:
    assert client.get("/static/js/survey.js").status_code == 200
    assert client.get("/static/feedback/survey.css").status_code == 200


def test_a_complete_submit_stores_one_response_and_then_shows_only_thank_you(
    client: Client, invitation: Invitation, token: str
) -> None:
    # given
    page = open_survey(client, token)
    data = form_data(invitation.cycle, value="5", management="Clear plans.")
    data[f"rating-{item_codes(invitation.cycle)[0]}"] = "cant_say"
    # when
    response = client.post(page, data)
    # then
    assert response.status_code == 303
    assert response["Location"] == page
    assert_survey_headers(response)
    [stored] = opened_answers(invitation.cycle)
    assert stored["ratings"][item_codes(invitation.cycle)[0]] is None
    assert stored["ratings"][item_codes(invitation.cycle)[1]] == 5
    assert stored["comments"]["management"] == "Clear plans."
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED
    thanks = client.get(page)
    html = thanks.content.decode()
    assert "Thank you — your answers are in" in html and "declined" not in html
    assert "<form" not in html.split('<main id="main"')[1]
    assert_survey_headers(thanks)
    # The browser's cookie no longer knows which invitation that page was.
    browser = survey_browser_decode(client.cookies[COOKIE_NAME].value)
    assert browser.surveys == {} and browser.done == [page.split("/")[-2]]
    # And the emailed link now shows the neutral page.
    again = client.get(f"/s/{token}/")
    assert again.status_code == 200
    assert "If you already answered, thank you." in again.content.decode()
    # Posting again stores nothing.
    second = client.post(page, data)
    assert second.status_code == 200
    assert "Thank you — your answers are in" in second.content.decode()
    assert len(opened_answers(invitation.cycle)) == 1


def test_missing_answers_re_render_with_errors_next_to_the_fields_and_everything_typed_kept(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = open_survey(client, token)
    codes = item_codes(invitation.cycle)
    data = form_data(invitation.cycle, value="2", skip=2, leadership="Inspiring <b>talks</b>")
    data[f"rating-{codes[5]}"] = "cant_say"
    response = client.post(page, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please check 2 answers" in html
    for code in codes[:2]:
        error_block = re.search(rf'<fieldset class="item has-error" id="rating-{code}".*?</fieldset>', html, re.S)
        assert error_block is not None
        assert "Choose an answer from 1 to 5, or “Can&#x27;t say”." in error_block.group(0)
        assert f'href="#rating-{code}"' in html
    # What was typed is all still there.
    assert f'id="rating-{codes[2]}-2" value="2" checked>' in html
    assert f'id="rating-{codes[5]}-cant_say" value="cant_say" checked>' in html
    assert "Inspiring &lt;b&gt;talks&lt;/b&gt;</textarea>" in html
    assert "<b>talks</b>" not in html
    assert "12</span> of 30" not in html and "28</span> of 30 statements answered" in html
    assert "data-from-post" in html
    assert not SealedAnswer.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN


def test_the_kept_copies_of_an_empty_page_hold_nothing_another_rater_typed(client: Client, make_link: Any) -> None:
    # given: one rater's page shown again with their comments and an error beside them
    first, first_token = make_link(name="First")
    page = open_survey(client, first_token)
    data = form_data(first.cycle, skip=1, leadership="Only mine to read", keep_doing="Mine too")
    assert "Only mine to read</textarea>" in client.post(page, data).content.decode()
    # when: another rater opens their first visit (its items and empty comments are kept copies)
    _second, second_token = make_link(name="Second")
    other = Client()
    response = other.get(open_survey(other, second_token))
    assert response.status_code == 200
    html = response.content.decode()
    # then
    assert "Only mine to read" not in html and "Mine too" not in html and "has-error" not in html
    for name in ("management", "leadership", "keep_doing", "start_doing"):
        assert f'name="comment-{name}" rows="4" maxlength="4000"></textarea>' in html


def test_html_in_comments_is_stored_as_text(client: Client, invitation: Invitation, token: str) -> None:
    page = open_survey(client, token)
    script = "<script>alert('hi')</script> & more"
    assert client.post(page, form_data(invitation.cycle, start_doing=script)).status_code == 303
    assert [answer["comments"]["start_doing"] for answer in opened_answers(invitation.cycle)] == [script]


def test_a_comment_over_the_limit_is_refused_next_to_the_field_and_kept(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = open_survey(client, token)
    long_text = "word " * 900
    response = client.post(page, form_data(invitation.cycle, keep_doing=long_text))
    html = response.content.decode()
    assert response.status_code == 400
    assert '<p class="field-error" id="comment-keep_doing-error">At most 4000 characters, please' in html
    assert long_text.strip() in html
    assert not SealedAnswer.objects.exists()


def test_a_tampered_answer_is_refused(client: Client, invitation: Invitation, token: str) -> None:
    page = open_survey(client, token)
    data = form_data(invitation.cycle)
    data[f"rating-{item_codes(invitation.cycle)[7]}"] = "7"
    data["rating-invented-1"] = "3"
    html = client.post(page, data).content.decode()
    assert "Must be a whole number from 1 to 5" in html
    assert "invented-1: Not an item of this survey." in html
    assert not SealedAnswer.objects.exists()


def test_the_survey_page_is_bound_to_the_session_that_opened_the_link(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = open_survey(client, token)
    stranger = Client()
    neutral = stranger.get("/s/not-a-token-0000000/").content
    assert stranger.get(page).content == neutral
    assert stranger.post(page, form_data(invitation.cycle)).content == neutral
    assert not SealedAnswer.objects.exists()


def test_the_page_stops_taking_answers_when_the_cycle_closes(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = open_survey(client, token)
    Cycle.objects.filter(pk=invitation.cycle_id).update(status=Cycle.Status.CLOSED)
    assert "This survey link is not open." in client.get(page).content.decode()
    Cycle.objects.filter(pk=invitation.cycle_id).update(status=Cycle.Status.OPEN)
    # The browser forgot the page when it found it closed; the link opens it again.
    assert "This survey link is not open." in client.post(page, form_data(invitation.cycle)).content.decode()
    assert not SealedAnswer.objects.exists()


def test_decline_with_a_reason(client: Client, invitation: Invitation, token: str) -> None:
    page = open_survey(client, token)
    response = client.post(f"{page}decline/", {"reason": "We have not worked together."})
    assert response.status_code == 303
    # a page of its own, not the thank-you for answering; its address and title are those of
    # an answered survey, so the browser's history does not say which it was
    assert response["Location"] == page
    declined = client.get(response["Location"]).content.decode()
    assert "You declined this survey" in declined and "your answers are in" not in declined
    assert "<title>Thank you · Balance 360</title>" in declined
    assert declined.count("You declined this survey") == 1
    # said once: opened again later, the page is the plain thank-you
    assert "You declined this survey" not in client.get(page).content.decode()
    assert [decline["reason"] for decline in opened_declines(invitation.cycle)] == ["We have not worked together."]
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.DECLINED
    assert "<h1>" in client.get(page).content.decode()
    assert not opened_answers(invitation.cycle)


def test_a_decline_reason_over_the_limit_is_refused_and_kept(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = open_survey(client, token)
    response = client.post(f"{page}decline/", {"reason": "long " * 500})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="decline-reason-error">At most 2000 characters' in html
    assert '<details class="decline" open>' in html
    assert ("long " * 500).strip() in html
    assert not SealedAnswer.objects.exists()


def test_posting_without_the_csrf_token_is_refused(invitation: Invitation, token: str) -> None:
    client = Client(enforce_csrf_checks=True)
    page = open_survey(client, token)
    assert client.post(page, form_data(invitation.cycle)).status_code == 403
    assert client.post(f"{page}decline/", {}).status_code == 403
    assert not SealedAnswer.objects.exists()


def _csrf_form(client: Client, page: str, invitation: Invitation) -> dict[str, str]:
    html = client.get(page).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match is not None
    return {**form_data(invitation.cycle), "csrfmiddlewaretoken": match.group(1)}


def test_a_same_origin_post_from_a_no_referrer_page_passes_csrf(invitation: Invitation, token: str) -> None:
    # Under Referrer-Policy: no-referrer, browsers send "Origin: null" with the form.
    client = Client(enforce_csrf_checks=True)
    page = open_survey(client, token)
    data = _csrf_form(client, page, invitation)
    response = client.post(page, data, headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303
    assert len(opened_answers(invitation.cycle)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_cross_site_post_is_refused_even_with_a_valid_token(
    invitation: Invitation, token: str, headers: dict[str, str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    page = open_survey(client, token)
    data = _csrf_form(client, page, invitation)
    assert client.post(page, data, headers=headers).status_code == 403
    assert not SealedAnswer.objects.exists()


def test_the_survey_page_is_sent_compressed_to_browsers_that_accept_it(client: Client, token: str) -> None:
    page = open_survey(client, token)
    plain = client.get(page)
    compressed = client.get(page, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert compressed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed["Vary"]
    assert int(compressed["Content-Length"]) < len(plain.content) / 5
    html = gzip.decompress(compressed.content).decode()
    assert "You are rating Jonas Berg as a peer" in html and html.count('<fieldset class="item"') == 30
    assert "Content-Encoding" not in plain
    assert_survey_headers(compressed)


def test_static_files_are_left_to_whitenoise(client: Client) -> None:
    # WhiteNoise serves static files (compressed ahead of time in production) before the
    # gzip middleware runs; the tests' uncompressed copies therefore come as they are.
    response = client.get("/static/js/survey.js", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert "Content-Encoding" not in response


@pytest.mark.parametrize("prefix", ["/feedback-360", "//elsewhere.example"])
def test_a_stored_answer_sends_the_browser_back_to_its_page_under_the_sites_script_prefix(
    invitation: Invitation, token: str, settings: Any, prefix: str
) -> None:
    # Behind a proxy that serves the site under a path (FORCE_SCRIPT_NAME), the redirect after
    # the answer keeps the prefix, and the page it leads to says "thank you". A prefix that
    # starts with // is escaped as reverse() escapes it: the redirect stays on this site.
    settings.FORCE_SCRIPT_NAME = prefix
    client = Client()
    # What Django's WSGI handler sets for every request from that setting (the test client does not).
    with override_script_prefix(f"{prefix}/"):
        page = open_survey(client, token)
        assert page.startswith(f"{prefix}/survey/".replace("//", "/%2F", 1))
        path = page.split("/survey/", 1)[1]
        response = client.post(f"/survey/{path}", form_data(invitation.cycle))
        assert response.status_code == 303
        assert response["Location"] == page and not response["Location"].startswith("//")
        thanks = client.get(f"/survey/{path}")
    assert thanks.status_code == 200 and "Thank you" in thanks.content.decode()


def test_the_form_is_stored_from_its_fields_and_one_field_too_many_stores_nothing(
    invitation: Invitation, token: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(enforce_csrf_checks=True)
    page = open_survey(client, token)
    html = client.get(page).content.decode()
    csrf = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    data = {**form_data(invitation.cycle, management="Clear plans & goals = 100 %"), "csrfmiddlewaretoken": csrf}

    # Urlencoded, as a browser posts the form (the test client's default is multipart).
    body = urlencode(data)
    read: list[bytes] = []

    def form_fields_watched(posted: bytes) -> Any:
        read.append(posted)
        return form_fields(posted)

    monkeypatch.setattr(config.forms, "form_fields", form_fields_watched)

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = len(data) - 1
    assert client.post(page, body, content_type=FORM_CONTENT_TYPE).status_code == 400
    assert not SealedAnswer.objects.exists()

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = len(data)
    assert client.post(page, body, content_type=FORM_CONTENT_TYPE).status_code == 303
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED
    assert SealedAnswer.objects.count() == 1
    # Both posts were read by config.forms, not by Django's QueryDict.
    assert read == [body.encode(), body.encode()]
    [stored] = opened_answers(invitation.cycle)
    assert stored["comments"]["management"] == "Clear plans & goals = 100 %"
