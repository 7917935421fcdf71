"""The emailed link: exchange for a session, redirect, headers, and one neutral page for every bad link."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from config.links import survey_url
from feedback.models import SealedAnswer
from feedback.services import response_decline, response_submit
from surveys.models import Cycle, Invitation, InvitationLink
from tests.feedback.helpers import full_answers

SURVEY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def assert_survey_headers(response: Any) -> None:
    for header, value in SURVEY_HEADERS.items():
        assert response[header] == value, header
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "http" not in csp and "*" not in csp  # no third party allowed anywhere


def test_the_link_is_exchanged_for_a_session_and_redirected_without_the_token(
    client: Client, invitation: Invitation, token: str
) -> None:
    response = client.get(f"/s/{token}/")
    assert response.status_code == 303
    location = response["Location"]
    assert location.startswith("/survey/")
    assert token not in location
    assert_survey_headers(response)
    invitation.refresh_from_db()
    assert invitation.opened_at is not None
    # The page behind the redirect is the survey, and its URL carries no token either.
    page = client.get(location)
    assert page.status_code == 200
    assert "You are rating Jonas Berg as a peer" in page.content.decode()
    assert_survey_headers(page)


def test_the_emailed_url_is_served_by_this_view(client: Client, token: str) -> None:
    path = survey_url(token).removeprefix("http://testserver")
    assert client.get(path).status_code == 303


def test_opening_the_link_again_and_again_changes_nothing_but_the_opened_mark(
    client: Client, invitation: Invitation, token: str
) -> None:
    # given: the first opening
    first = client.get(f"/s/{token}/")
    invitation.refresh_from_db()
    opened_at, status = invitation.opened_at, invitation.status
    links_before = list(InvitationLink.objects.values_list("pk", "token_hash"))
    # when: mail scanners and the rater open it again, with GET and HEAD, from anywhere
    responses = [client.get(f"/s/{token}/"), client.head(f"/s/{token}/")]
    responses += [Client().get(f"/s/{token}/"), Client().head(f"/s/{token}/")]
    # then
    assert [r.status_code for r in responses] == [303] * 4
    # The same browser gets the same survey page every time.
    assert responses[0]["Location"] == responses[1]["Location"] == first["Location"]
    invitation.refresh_from_db()
    assert (invitation.opened_at, invitation.status) == (opened_at, status)
    assert list(InvitationLink.objects.values_list("pk", "token_hash")) == links_before
    assert not SealedAnswer.objects.exists()


def test_the_link_only_answers_get_and_head(client: Client, token: str) -> None:
    response = client.post(f"/s/{token}/", {})
    assert response.status_code == 405
    assert not SealedAnswer.objects.exists()


def _bad_links(invitation: Invitation, token: str, make_link: Any) -> dict[str, str]:
    """One link of each kind that must not open: wrong, expired, used (answered / declined), closed cycle."""
    expired, expired_token = make_link(name="Expired Person")
    Invitation.objects.filter(pk=expired.pk).update(status=Invitation.Status.EXPIRED)
    answered, answered_token = make_link(name="Answered Person")
    response_submit(invitation_id=answered.pk, answers=full_answers(answered.cycle))
    declined, declined_token = make_link(name="Declined Person")
    response_decline(invitation_id=declined.pk, reason="")
    return {
        "wrong": token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
        "expired": expired_token,
        "used": answered_token,
        "declined": declined_token,
        "closed": token,
    }


@pytest.mark.parametrize("api", [False, True])
def test_wrong_expired_used_and_closed_links_get_the_same_neutral_answer(
    invitation: Invitation, token: str, make_link: Any, api: bool
) -> None:
    links = _bad_links(invitation, token, make_link)
    # The cycle closes last, so "closed" is a link that worked until now.
    bodies: dict[str, tuple[int, bytes]] = {}
    for kind in ("wrong", "expired", "used", "declined"):
        path = f"/api/survey/{links[kind]}/" if api else f"/s/{links[kind]}/"
        response = Client().get(path)
        bodies[kind] = (response.status_code, response.content)
        assert response["Cache-Control"] == "no-store"
        assert "Set-Cookie" not in response.headers
    Cycle.objects.filter(pk=invitation.cycle_id).update(status=Cycle.Status.CLOSED)
    response = Client().get(f"/api/survey/{links['closed']}/" if api else f"/s/{links['closed']}/")
    bodies["closed"] = (response.status_code, response.content)
    # then: byte-identical, same status, nothing that tells the cases apart
    assert len(set(bodies.values())) == 1, bodies
    status, content = bodies["closed"]
    if api:
        assert status == 404
        assert response.json() == {"detail": "This survey link is not open. If you already answered, thank you."}
    else:
        assert status == 200
        html = content.decode()
        assert "This survey link is not open." in html
        assert "If you already answered, thank you." in html
        assert_survey_headers(response)


def test_a_link_past_its_deadline_gets_the_neutral_page(client: Client, invitation: Invitation, token: str) -> None:
    neutral = Client().get("/s/not-a-real-token-at-all/").content
    Cycle.objects.filter(pk=invitation.cycle_id).update(deadline=timezone.now() - timedelta(seconds=1))
    response = client.get(f"/s/{token}/")
    assert (response.status_code, response.content) == (200, neutral)
    invitation.refresh_from_db()
    assert invitation.opened_at is None


def test_the_neutral_page_is_the_same_for_a_signed_in_visitor(client: Client, manager: Any) -> None:
    anonymous = Client().get("/s/unknown-token-0123456789/").content
    client.force_login(manager)
    assert client.get("/s/another-unknown-token-xyz/").content == anonymous


def test_a_rater_with_several_links_opens_them_one_after_another(client: Client, token: str, make_link: Any) -> None:
    _, second_token = make_link(name="Priya Nair")
    first_page = client.get(f"/s/{token}/")["Location"]
    second_page = client.get(f"/s/{second_token}/")["Location"]
    assert first_page != second_page
    # Both stay usable in the same browser, in any order.
    assert "rating Jonas Berg" in client.get(first_page).content.decode()
    assert "rating Priya Nair" in client.get(second_page).content.decode()
    assert "rating Jonas Berg" in client.get(first_page).content.decode()
    # Opening the first link again leads back to the same page.
    assert client.get(f"/s/{token}/")["Location"] == first_page


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_tokens_never_reach_the_logs(client: Client, invitation: Invitation, token: str) -> None:
    # Django's loggers do not propagate to the root logger, so listen on them directly.
    records = _Records()
    loggers = [logging.getLogger(name) for name in ("", "django", "django.request", "feedback")]
    for logger in loggers:
        logger.addHandler(records)
    try:
        client.get(f"/s/{token}/", follow=True)
        client.get(f"/api/survey/{token}/")
        client.post(f"/api/survey/{token}/responses/", {"ratings": {}}, content_type="application/json")  # 400
        client.get("/api/survey/unknown-token-abcdefgh/")  # 404
        client.post(f"/s/{token}/")  # 405
        client.get("/s/unknown-token-abcdefgh/")
    finally:
        for logger in loggers:
            logger.removeHandler(records)
    text = "\n".join(records.lines)
    assert "survey api POST answered 400" in text
    assert token not in text
    assert "unknown-token-abcdefgh" not in text
