"""The rater's browser keeps which survey it opened in an encrypted cookie, nothing of it once answered."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from feedback.browser import COOKIE_NAME, SurveyBrowser, survey_browser_decode
from feedback.models import SealedAnswer
from surveys.models import Cycle, Invitation
from tests.feedback.helpers import form_data

SURVEY_SCRIPT = Path(__file__).resolve().parents[2] / "static" / "js" / "survey.js"


def _browser(client: Client) -> SurveyBrowser:
    return survey_browser_decode(client.cookies[COOKIE_NAME].value)


def test_opening_the_link_keeps_the_key_in_an_http_only_cookie_and_nothing_on_the_server(
    client: Client, invitation: Invitation, token: str
) -> None:
    response = client.get(f"/s/{token}/")
    key = response["Location"].split("/")[-2]
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert _browser(client).surveys == {key: invitation.pk}
    assert not Session.objects.exists()
    assert "sessionid" not in response.cookies


def test_once_the_answer_is_stored_the_cookie_keeps_only_the_bare_key(
    client: Client, invitation: Invitation, token: str
) -> None:
    # given
    page = str(client.get(f"/s/{token}/")["Location"])
    key = page.split("/")[-2]
    # when
    response = client.post(page, form_data(invitation.cycle))
    # then: the answer's response itself rewrites the cookie without the invitation
    assert response.status_code == 303
    kept = survey_browser_decode(response.cookies[COOKIE_NAME].value)
    assert kept.surveys == {} and kept.done == [key]
    assert not Session.objects.exists()
    assert "Thank you — your answers are in" in client.get(page).content.decode()


def test_after_a_decline_the_cookie_keeps_only_the_bare_key(client: Client, invitation: Invitation, token: str) -> None:
    page = str(client.get(f"/s/{token}/")["Location"])
    assert client.post(f"{page}decline/", {"reason": ""}).status_code == 303
    assert _browser(client).surveys == {}
    assert _browser(client).done == [page.split("/")[-2]]


def test_an_invalid_submit_keeps_the_survey_open_in_the_browser(
    client: Client, invitation: Invitation, token: str
) -> None:
    page = str(client.get(f"/s/{token}/")["Location"])
    response = client.post(page, form_data(invitation.cycle, skip=1))
    assert response.status_code == 400
    assert COOKIE_NAME not in response.cookies  # unchanged
    assert _browser(client).surveys == {page.split("/")[-2]: invitation.pk}


def test_an_altered_or_forged_cookie_opens_nothing(client: Client, invitation: Invitation, token: str) -> None:
    page = str(client.get(f"/s/{token}/")["Location"])
    neutral = Client().get("/s/not-a-token-0000000/").content
    value = client.cookies[COOKIE_NAME].value
    for forged in (value[:-2] + ("AA" if not value.endswith("AA") else "BB"), "e30:1abcde:forged", ""):
        client.cookies[COOKIE_NAME] = forged
        assert client.get(page).content == neutral
        assert client.post(page, form_data(invitation.cycle)).content == neutral
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.OPEN


def test_many_links_in_one_browser_keep_the_cookie_under_the_browsers_limit(make_link: Any) -> None:
    client = Client()
    pages = []
    for n in range(80):
        invitation, token = make_link(name=f"Person {n}")
        pages.append((invitation, str(client.get(f"/s/{token}/")["Location"])))
    for invitation, page in pages[:60]:
        assert client.post(page, form_data(invitation.cycle)).status_code == 303
    assert len(client.cookies[COOKIE_NAME].value) < 4000
    kept = _browser(client)
    assert set(kept.surveys.values()) == {invitation.pk for invitation, _ in pages[60:]}
    assert len(kept.done) == 50


def test_the_cookie_cannot_be_read_without_the_servers_key(client: Client, invitation: Invitation, token: str) -> None:
    # Which surveys a browser still has open, and when it last answered, are nobody's to read:
    # the manager sees each rater's invitation id in the raters API.
    import base64
    import re

    response = client.get(f"/s/{token}/")
    key = response["Location"].split("/")[-2]
    value = client.cookies[COOKIE_NAME].value
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    # what the cookie holds, in any readable form: the key, the key beside the id, JSON at all
    # (a single digit would turn up in random bytes by chance)
    for readable in (key.encode(), f'"{key}":{invitation.pk}'.encode(), b'{"', b'"s"'):
        assert readable not in raw
    assert ":" not in value and re.fullmatch(r"[A-Za-z0-9_-]+", value)
    # a random nonce: the same state written twice never reads the same
    assert survey_browser_decode(value).surveys == {key: invitation.pk}
    assert Client().get(f"/s/{token}/").cookies[COOKIE_NAME].value != value


def test_an_expired_or_garbled_cookie_opens_nothing(
    client: Client, invitation: Invitation, token: str, settings: Any, monkeypatch: Any
) -> None:
    import time

    page = str(client.get(f"/s/{token}/")["Location"])
    neutral = Client().get("/s/not-a-token-0000000/").content
    later = time.time() + settings.SURVEY_COOKIE_AGE + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(page).content == neutral
    monkeypatch.undo()
    for garbled in ("é" * 10, "A", "=" * 7, "AAAA" * 2000):
        client.cookies[COOKIE_NAME] = garbled
        assert client.get(page).content == neutral


def test_a_rater_back_at_an_open_page_weeks_later_still_submits_what_they_typed(
    client: Client, invitation: Invitation, token: str, monkeypatch: Any
) -> None:
    import time

    # given: a four-week review; the rater opens the link on its first day
    Cycle.objects.filter(pk=invitation.cycle_id).update(deadline=timezone.now() + timedelta(days=28))
    opened = client.get(f"/s/{token}/")
    page = str(opened["Location"])
    # the cookie lasts as long as the draft the page keeps in the browser
    draft_days = re.search(r"MAX_AGE_MS = (\d+) \* 24 \* 60 \* 60 \* 1000", SURVEY_SCRIPT.read_text())
    assert draft_days is not None
    assert opened.cookies[COOKIE_NAME]["max-age"] == int(draft_days.group(1)) * 24 * 60 * 60
    # when: they submit from the same page three weeks later, past a staff session's two weeks
    later = time.time() + 21 * 24 * 60 * 60
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.post(page, form_data(invitation.cycle))
    # then: the answer is stored
    assert response.status_code == 303
    assert SealedAnswer.objects.filter(cycle_id=invitation.cycle_id).count() == 1
    invitation.refresh_from_db()
    assert invitation.status == Invitation.Status.COMPLETED


def test_a_cookie_written_before_the_secret_key_was_rotated_still_opens_the_survey(
    client: Client, token: str, settings: Any
) -> None:
    page = str(client.get(f"/s/{token}/")["Location"])
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-test-" + "x" * 40
    assert "You are rating Jonas Berg" in client.get(page).content.decode()
    settings.SECRET_KEY_FALLBACKS = []
    assert "You are rating Jonas Berg" not in client.get(page).content.decode()


def test_the_cookie_is_sent_over_https_only_where_the_session_cookie_is(
    client: Client, invitation: Invitation, token: str, settings: Any
) -> None:
    # Production sets SESSION_COOKIE_SECURE; the survey cookie follows it, both ways.
    settings.SESSION_COOKIE_SECURE = True
    assert client.get(f"/s/{token}/").cookies[COOKIE_NAME]["secure"]
    settings.SESSION_COOKIE_SECURE = False
    assert not Client().get(f"/s/{token}/").cookies[COOKIE_NAME]["secure"]


def test_a_cookie_written_before_it_kept_who_chose_the_rater_still_opens_and_submits_the_survey(
    client: Client, invitation: Invitation, token: str
) -> None:
    # given: the cookie as it was written before, five numbers held beside the key
    import time

    from feedback import browser
    from feedback.models import SealedAnswer

    page = str(client.get(f"/s/{token}/")["Location"])
    key = page.split("/")[-2]
    earlier = [
        invitation.pk,
        invitation.cycle_id,
        invitation.subject_id,
        browser._GROUPS.index(invitation.group),
        invitation.cycle.questionnaire_id,
    ]
    client.cookies[COOKIE_NAME] = browser._seal({"s": {key: earlier}, "d": [], "t": int(time.time())})
    assert _browser(client).surveys == {key: invitation.pk}
    # when / then: the survey opens, and its submit (which then reads the invitation) is stored
    assert "You are rating Jonas Berg" in client.get(page).content.decode()
    assert client.post(page, form_data(invitation.cycle)).status_code == 303
    assert SealedAnswer.objects.filter(cycle=invitation.cycle).count() == 1
