"""A first visit's survey page, put together from a copy rendered once (feedback.survey_page).

The copy is shared by every rater of a questionnaire: these tests look for anything of one
visit in another's page, and compare the assembled page with the page rendered whole.
"""

from __future__ import annotations

import gzip
import re
import zlib
from typing import Any

import pytest
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.http import HttpResponse
from django.middleware.csrf import CSRF_SECRET_LENGTH, CSRF_TOKEN_LENGTH, _unmask_cipher_token
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.test.utils import override_script_prefix
from django.utils import timezone, translation

from config.compression import STORED_BLOCK_MAX, CompressedPieces
from feedback.selectors import invitation_get_answerable
from feedback.survey_page import SURVEY_TEMPLATE, survey_page_context, survey_page_frame
from surveys.models import Group, Invitation
from tests.factories import UserFactory
from tests.feedback.helpers import form_data
from tests.feedback.test_views_survey import open_survey

CSRF_VALUE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cold_copies() -> None:
    """Each test builds the copies it uses: one left by another test would hide a first visit's mistakes."""
    survey_page_frame.cache_clear()


def page_html(client: Client, url: str, *, gzipped: bool = True) -> str:
    headers = {"Accept-Encoding": "gzip, deflate, br"} if gzipped else {}
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    assert response.get("Content-Encoding") == ("gzip" if gzipped else None)
    assert "Accept-Encoding" in response["Vary"]
    return (gzip.decompress(response.content) if gzipped else response.content).decode()


def whole_render(client: Client, invitation: Invitation, url: str) -> str:
    """The page as the template renders it whole, for the request the client would send."""
    request = RequestFactory().get(url, secure=False)
    request.user = AnonymousUser()
    request.session = client.session
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    key = url.rstrip("/").rsplit("/", 1)[1]
    shown = invitation_get_answerable(invitation_id=invitation.pk)
    assert shown is not None
    return render_to_string(SURVEY_TEMPLATE, survey_page_context(shown, key), request=request)


def without_csrf_values(html: str) -> str:
    return CSRF_VALUE.sub('name="csrfmiddlewaretoken" value="…"', html)


# --- the compressed frame ------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        ["a", "b"],
        ["", ""],  # empty values: no stored block at all
        ["Zoë <&> “quoted” 🙂", "x" * (2 * STORED_BLOCK_MAX + 17)],  # UTF-8, and more than one stored block
    ],
)
def test_the_gzip_stream_is_the_text_for_every_decoder(values: list[str]) -> None:
    frame = CompressedPieces(["<p>" * 500, " between ", "</p>" * 500])
    text = frame.text(values)
    assert text == ("<p>" * 500 + values[0] + " between " + values[1] + "</p>" * 500).encode()
    stream = frame.gzip(values)
    assert gzip.decompress(stream) == text
    # zlib's streaming decoder, as a browser reads it, finds the end of the stream exactly.
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decoder.decompress(stream) + decoder.flush() == text
    assert decoder.eof and not decoder.unused_data


def test_a_frame_takes_exactly_one_value_per_slot() -> None:
    frame = CompressedPieces(["a", "b", "c"])
    assert frame.slots == 2
    with pytest.raises(ValueError, match="2 slots, 1 values"):
        frame.gzip(["x"])
    with pytest.raises(ValueError, match="2 slots, 3 values"):
        frame.text(["x", "y", "z"])


def test_each_stream_carries_a_random_name_of_1_to_100_bytes() -> None:
    frame = CompressedPieces(["<p>" * 500, "</p>"])
    streams = [frame.gzip(["x"]) for _ in range(40)]
    assert all(stream[3] == gzip.FNAME for stream in streams)
    assert all(gzip.decompress(stream) == frame.text(["x"]) for stream in streams)
    names = [stream[10 : stream.index(b"\x00", 10)] for stream in streams]
    assert all(1 <= len(name) <= 100 and name.isalnum() for name in names)
    assert len({len(stream) for stream in streams}) > 10


def test_the_static_text_is_compressed_and_the_values_are_not() -> None:
    static = "<li>Sets a clear direction for the team</li>" * 200
    frame = CompressedPieces([static, static])
    secret = "Zq8sE4mR7tW2yU9iO0pA3sD5fG6hJ1kL"
    stream = frame.gzip([secret])
    assert len(stream) < len(static) / 10
    # The value travels as it is, beside nothing it could be compressed with.
    assert secret.encode() in stream


# --- the page ------------------------------------------------------------------------------


def test_a_first_visit_is_the_page_the_template_renders_whole(
    client: Client, invitation: Invitation, token: str
) -> None:
    url = open_survey(client, token)
    compressed = page_html(client, url)
    plain = page_html(client, url, gzipped=False)
    assert without_csrf_values(compressed) == without_csrf_values(plain)
    assert without_csrf_values(compressed) == without_csrf_values(whole_render(client, invitation, url))
    assert compressed.count('<fieldset class="item"') == 30


def test_each_visit_shows_its_own_invitation_and_nothing_of_another(client: Client, make_link: Any) -> None:
    # Two raters of one questionnaire and kind of promise share one frame; their subjects'
    # names need escaping, and the second visit comes after the first filled the cache.
    first, first_token = make_link(name="Ana <b>Lópes</b> & co")
    _, second_token = make_link(name="Ben O'Neill")
    first_client, second_client = Client(), Client()
    first_url = open_survey(first_client, first_token)
    second_url = open_survey(second_client, second_token)
    first_page = page_html(first_client, first_url)
    second_page = page_html(second_client, second_url)

    assert "<h1>You are rating Ana &lt;b&gt;Lópes&lt;/b&gt; &amp; co as a peer</h1>" in first_page
    assert "<h1>You are rating Ben O&#x27;Neill as a peer</h1>" in second_page
    first_key = first_url.rstrip("/").rsplit("/", 1)[1]
    second_key = second_url.rstrip("/").rsplit("/", 1)[1]
    assert first_page.count(first_key) == 3 and second_page.count(second_key) == 3  # two actions, the draft key
    (first_csrf,) = set(CSRF_VALUE.findall(first_page))
    for mark in ("Ana", "Lópes", first_key, first_csrf):
        assert mark not in second_page
    assert without_csrf_values(first_page).replace(first_key, "K").replace(
        "Ana &lt;b&gt;Lópes&lt;/b&gt; &amp; co", "N"
    ) == without_csrf_values(second_page).replace(second_key, "K").replace("Ben O&#x27;Neill", "N")

    # The shared copy itself holds nothing of either visit.
    frame = survey_page_frame(first.cycle.questionnaire_id, translation.get_language() or "", False, "/")
    shared = frame.pieces.text([""] * frame.pieces.slots).decode()
    for mark in ("Ana", "Ben", "Neill", first_key, second_key, first_csrf, "sessionid"):
        assert mark not in shared


@pytest.mark.parametrize("group", [Group.SELF, Group.MANAGER])
def test_an_identified_rater_and_an_anonymous_one_get_their_own_promise(
    client: Client, make_link: Any, group: str
) -> None:
    _, anonymous_token = make_link(group=Group.PEER)
    _, identified_token = make_link(group=group)
    anonymous_page = page_html(client, open_survey(client, anonymous_token))
    identified_page = page_html(client, open_survey(client, identified_token))
    assert '<section class="promise" ' in anonymous_page and "Your answers are anonymous" in anonymous_page
    assert '<section class="promise identified" ' in identified_page
    assert "Your answers are identified" in identified_page and "anonymous" not in identified_page.lower()


def test_the_deadline_reads_as_the_template_filter_writes_it_in_the_current_time_zone(
    client: Client, invitation: Invitation, token: str
) -> None:
    url = open_survey(client, token)
    # The same cycle's deadline in two zones, one after the other: each page says its own.
    for zone in ("UTC", "Pacific/Auckland"):
        with timezone.override(zone):
            html = page_html(client, url)
            expected = Template("{{ d|date:'c' }}|{{ d|date:'l j F Y, H:i T' }}").render(
                Context({"d": invitation.cycle.deadline})
            )
        (stated,) = re.findall(r'<time datetime="([^"]+)">([^<]+)</time>', html)
        assert "|".join(stated) == expected
        assert ("+00:00" if zone == "UTC" else "+1") in stated[0]


def test_a_visit_under_another_script_prefix_gets_its_own_page_and_changes_no_one_elses(
    client: Client, make_link: Any
) -> None:
    # gunicorn takes a SCRIPT_NAME header from a trusted proxy: a rater who sends one must not
    # put their prefix into the copy every rater's page is made from.
    _, first_token = make_link()
    _, second_token = make_link()
    odd = Client()
    odd_url = open_survey(odd, first_token)
    # What Django's WSGI handler sets from that header (the test client sets no prefix).
    with override_script_prefix("/elsewhere/"):
        odd_page = page_html(odd, odd_url)
    assert 'action="/elsewhere/survey/' in odd_page
    url = open_survey(client, second_token)
    page = page_html(client, url)
    assert "/elsewhere" not in page
    assert f'action="{url}"' in page and f'action="{url}decline/"' in page


def test_a_message_waiting_to_be_shown_gets_the_page_rendered_whole_and_shown_once(
    client: Client, invitation: Invitation, token: str
) -> None:
    url = open_survey(client, token)
    storage = CookieStorage(RequestFactory().get("/"))
    response = HttpResponse()
    storage.add(messages.INFO, "A note for this browser")
    storage.update(response)
    client.cookies[CookieStorage.cookie_name] = response.cookies[CookieStorage.cookie_name].value
    assert "A note for this browser" in page_html(client, url)
    assert "A note for this browser" not in page_html(client, url)


def test_a_head_request_is_answered_like_a_get_without_a_body(client: Client, token: str) -> None:
    url = open_survey(client, token)
    response = client.head(url, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert response.content == b""


def test_a_signed_in_user_gets_the_page_rendered_whole_with_the_navigation(client: Client, token: str) -> None:
    client.force_login(UserFactory())
    html = page_html(client, open_survey(client, token))
    assert "Sign out" in html
    assert html.count('<fieldset class="item"') == 30


def test_the_form_posts_with_the_token_the_assembled_page_carries(invitation: Invitation, token: str) -> None:
    client = Client(enforce_csrf_checks=True)
    url = open_survey(client, token)
    (csrf,) = set(CSRF_VALUE.findall(page_html(client, url)))
    response = client.post(url, {**form_data(invitation.cycle), "csrfmiddlewaretoken": csrf})
    assert response.status_code == 303
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED


def test_the_form_token_is_the_cookies_secret_in_a_stored_block_and_the_cookie_is_not_set_again(
    invitation: Invitation, token: str
) -> None:
    # Masking the token for every page is Django's defence against BREACH; a token that is
    # compressed with nothing needs none. The gzip stream carries the cookie's secret as a
    # stored block, and a browser whose cookie already holds it is not sent the cookie again.
    client = Client(enforce_csrf_checks=True)
    url = open_survey(client, token)
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert settings.CSRF_COOKIE_NAME in first.cookies  # a browser without one is given one
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert len(secret) == CSRF_SECRET_LENGTH

    again = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert settings.CSRF_COOKIE_NAME not in again.cookies
    assert {"Accept-Encoding", "Cookie"} <= {value.strip() for value in again["Vary"].split(",")}
    (form_token,) = set(CSRF_VALUE.findall(gzip.decompress(again.content).decode()))
    assert form_token == secret
    # As a stored block: the bytes themselves, in the compressed stream.
    assert again.content.count(secret.encode()) == 2  # the survey form and the decline form

    response = client.post(url, {**form_data(invitation.cycle), "csrfmiddlewaretoken": form_token})
    assert response.status_code == 303
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED


def test_a_page_sent_uncompressed_masks_its_token(client: Client, token: str) -> None:
    # Something on the way (a proxy asked for "GZIP") may still compress it beside other text.
    url = open_survey(client, token)
    page_html(client, url)
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    tokens = [CSRF_VALUE.findall(page_html(client, url, gzipped=False))[0] for _ in range(2)]
    assert all(len(found) == CSRF_TOKEN_LENGTH for found in tokens) and tokens[0] != tokens[1]
    assert {_unmask_cipher_token(found) for found in tokens} == {secret}


def test_a_browser_with_a_garbled_csrf_cookie_gets_a_new_one_and_its_secret_as_the_token(
    invitation: Invitation, token: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    url = open_survey(client, token)
    client.cookies[settings.CSRF_COOKIE_NAME] = "not a secret!"
    page = client.get(url, headers={"Accept-Encoding": "gzip"})
    secret = page.cookies[settings.CSRF_COOKIE_NAME].value
    assert len(secret) == CSRF_SECRET_LENGTH
    (form_token,) = set(CSRF_VALUE.findall(gzip.decompress(page.content).decode()))
    assert form_token == secret
    response = client.post(url, {**form_data(invitation.cycle), "csrfmiddlewaretoken": form_token})
    assert response.status_code == 303


def test_a_page_rendered_whole_and_compressed_still_masks_its_token(client: Client, token: str) -> None:
    # A signed-in user's page goes through the template and GZipMiddleware, beside the
    # navigation's text: its token is masked afresh, as Django masks it everywhere else.
    client.force_login(UserFactory())
    url = open_survey(client, token)
    tokens = [CSRF_VALUE.findall(page_html(client, url))[0] for _ in range(2)]
    secret = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert all(len(found) == CSRF_TOKEN_LENGTH for found in tokens) and tokens[0] != tokens[1]
    assert {_unmask_cipher_token(found) for found in tokens} == {secret}
