"""The rater's survey in Chromium: keyboard only, a draft that survives a reload, errors that keep answers."""

from __future__ import annotations

from typing import Any

import pytest

from feedback.models import SealedAnswer
from surveys.models import Cycle, Invitation
from surveys.services import invitation_link_create
from tests.factories import CycleFactory, InvitationFactory, SubjectFactory
from tests.feedback.helpers import item_codes, opened_answers, opened_declines

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAFTS = "Object.keys(localStorage).filter((name) => name.startsWith('b360-survey-draft:'))"


@pytest.fixture
def survey_link(default_questionnaire: Any, live_server: Any) -> tuple[str, Cycle]:
    cycle = CycleFactory(status=Cycle.Status.OPEN, questionnaire=default_questionnaire)
    subject = SubjectFactory(cycle=cycle, person__name="Jonas Berg")
    invitation = InvitationFactory(subject=subject, status=Invitation.Status.OPEN)
    token = invitation_link_create(invitation=invitation)
    return f"{live_server.url}/s/{token}/", cycle


def _watch_console(page: Any) -> list[str]:
    """Script errors, CSP refusals and missing resources of the page.

    Chromium's own favicon request (the site has none) shows only as a console line
    without a page response; the page's resources are checked through their responses.
    """
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("response", lambda response: problems.append(response.url) if response.status == 404 else None)
    return problems


def _answer_with_keyboard(page: Any, code: str, value: int) -> None:
    """In the focused radio group: Space picks 1, each ArrowRight moves one step up the scale."""
    assert page.evaluate("document.activeElement.name") == f"rating-{code}"
    page.keyboard.press("Space")
    for _ in range(value - 1):
        page.keyboard.press("ArrowRight")


def _tab_to_next_item(page: Any) -> None:
    page.keyboard.press("Tab")
    # The side's comment box sits after its last item; it stays empty here.
    while page.evaluate("document.activeElement.tagName") == "TEXTAREA":
        page.keyboard.press("Tab")


def test_a_rater_answers_with_the_keyboard_reloads_keeps_the_draft_and_submits(
    page: Any, survey_link: tuple[str, Cycle]
) -> None:
    url, cycle = survey_link
    codes = item_codes(cycle)
    values = [(index % 5) + 1 for index in range(len(codes))]
    problems = _watch_console(page)

    # The link redirects at once to an address without the token.
    page.goto(url)
    assert "/survey/" in page.url
    assert url.rsplit("/s/", 1)[1].strip("/") not in page.url
    assert page.get_by_role("heading", level=1).inner_text() == "You are rating Jonas Berg as a peer"

    # Answer the first three statements with the keyboard only.
    page.locator(f"#rating-{codes[0]}-1").focus()
    for code, value in zip(codes[:3], values[:3], strict=True):
        _answer_with_keyboard(page, code, value)
        _tab_to_next_item(page)
    page.locator(f"#comment-{'leadership'}").focus()
    page.keyboard.type("Shares the <why> behind changes")
    assert page.locator("#survey-progress-text").inner_text() == "3 of 30 statements answered"

    # A reload loses nothing: the draft lives in this browser.
    page.reload()
    for code, value in zip(codes[:3], values[:3], strict=True):
        assert page.locator(f"#rating-{code}-{value}").is_checked()
    assert page.locator("#comment-leadership").input_value() == "Shares the <why> behind changes"
    assert page.locator("#survey-progress-text").inner_text() == "3 of 30 statements answered"
    assert len(page.evaluate(DRAFTS)) == 1
    assert not SealedAnswer.objects.exists()  # the draft never reached the server

    # Answer the rest, then submit with Enter.
    page.locator(f"#rating-{codes[3]}-1").focus()
    for code, value in zip(codes[3:], values[3:], strict=True):
        _answer_with_keyboard(page, code, value)
        if code != codes[-1]:
            _tab_to_next_item(page)
    assert page.locator("#survey-progress-text").inner_text() == "30 of 30 statements answered"
    page.get_by_role("button", name="Submit my answers").focus()
    page.keyboard.press("Enter")

    page.get_by_role("heading", name="Thank you — your answers are in").wait_for()
    assert page.evaluate(DRAFTS) == []
    [stored] = opened_answers(cycle)
    assert [stored["ratings"][code] for code in codes] == values
    assert stored["comments"]["leadership"] == "Shares the <why> behind changes"
    assert problems == []  # no script error, nothing refused by the Content-Security-Policy

    # The link now shows the neutral page; the survey page only "thank you".
    page.goto(url)
    assert "This survey link is not open." in page.locator("main").inner_text()


def test_a_validation_error_keeps_everything_typed(page: Any, survey_link: tuple[str, Cycle]) -> None:
    url, cycle = survey_link
    codes = item_codes(cycle)
    page.goto(url)
    page.locator(f"#rating-{codes[0]}-1").focus()
    _answer_with_keyboard(page, codes[0], 4)
    _tab_to_next_item(page)
    page.keyboard.press("Space")
    page.locator(f"#rating-{codes[2]}-cant_say").check()
    page.locator("#comment-start_doing").fill("Delegate more")
    page.get_by_role("button", name="Submit my answers").click()

    summary = page.get_by_role("alert")
    summary.wait_for()
    assert "Please check 27 answers" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator(f"#rating-{codes[0]}-4").is_checked()
    assert page.locator(f"#rating-{codes[1]}-1").is_checked()
    assert page.locator(f"#rating-{codes[2]}-cant_say").is_checked()
    assert page.locator("#comment-start_doing").input_value() == "Delegate more"
    assert page.locator(f"#rating-{codes[3]}-error").inner_text().startswith("Choose an answer")
    assert page.locator("#survey-progress-text").inner_text() == "3 of 30 statements answered"
    assert not SealedAnswer.objects.exists()


def test_the_survey_fits_a_phone_screen(page: Any, survey_link: tuple[str, Cycle]) -> None:
    url, _ = survey_link
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    first_choice = page.locator(".choice").first.bounding_box()
    assert first_choice["height"] >= 44  # a finger-sized target
    # one row of six choices per statement, each box wide enough for a finger
    boxes = [page.locator("fieldset.item").first.locator(".choice").nth(index).bounding_box() for index in range(6)]
    assert len({round(box["y"]) for box in boxes}) == 1
    assert min(box["width"] for box in boxes) >= 44
    # tapping anywhere in a box picks it (the label covers the whole box)
    page.locator("fieldset.item").first.evaluate("element => element.scrollIntoView({block: 'center'})")
    third = page.locator("fieldset.item").first.locator(".choice").nth(2).bounding_box()
    page.mouse.click(third["x"] + third["width"] - 4, third["y"] + third["height"] - 4)
    assert page.locator("fieldset.item").first.locator("input[value='3']").is_checked()
    # 30 statements no longer stack six options each
    assert page.evaluate("document.documentElement.scrollHeight") < 8000


def test_a_rater_declines_with_the_keyboard(page: Any, survey_link: tuple[str, Cycle]) -> None:
    url, cycle = survey_link
    page.goto(url)
    summary = page.locator("details.decline summary")
    summary.focus()
    page.keyboard.press("Enter")  # opens the decline section
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "decline-reason"
    page.keyboard.type("I joined the team last week.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="You declined this survey").wait_for()
    assert [decline["reason"] for decline in opened_declines(cycle)] == ["I joined the team last week."]
    assert not opened_answers(cycle)


def test_a_post_too_large_to_send_comes_back_with_every_answer_restored(
    page: Any, survey_link: tuple[str, Cycle], settings: Any
) -> None:
    # given: a rater who answered two statements and pasted far more than the server takes
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    url, cycle = survey_link
    codes = item_codes(cycle)
    page.goto(url)
    page.locator(f"label[for='rating-{codes[0]}-4']").click()
    page.locator(f"label[for='rating-{codes[1]}-2']").click()
    # the textarea's maxlength stops typing, not a script or a tampered form
    page.evaluate(
        "(text) => { const field = document.getElementById('comment-management');"
        " field.removeAttribute('maxlength'); field.value = text;"
        " field.dispatchEvent(new Event('input', {bubbles: true})); }",
        "x" * (70 * 1024),
    )
    # when: they submit
    page.get_by_role("button", name="Submit my answers").click()
    # then: the survey comes back saying why, with what they had answered restored
    page.get_by_role("heading", name="Your answers were not sent").wait_for()
    assert page.locator(f"#rating-{codes[0]}-4").is_checked()
    assert page.locator(f"#rating-{codes[1]}-2").is_checked()
    assert len(page.locator("#comment-management").input_value()) == 70 * 1024
    assert not SealedAnswer.objects.exists()
