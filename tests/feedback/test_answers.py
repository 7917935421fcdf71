from __future__ import annotations

from typing import Any

import pytest

from feedback.answers import (
    BAD_RATING,
    COMMENT_MAX_LENGTH,
    MISSING_RATING,
    NOT_TEXT,
    UNKNOWN_COMMENT,
    UNKNOWN_ITEM,
    AnswersInvalid,
    answers_clean,
    reason_clean,
    text_clean,
)

CODES = ["planning_budgeting-1", "planning_budgeting-2", "aligning_people-1"]


def errors_of(data: Any) -> dict[str, Any]:
    with pytest.raises(AnswersInvalid) as raised:
        answers_clean(item_codes=CODES, data=data)
    return raised.value.errors


def test_every_item_answered_with_one_to_five_or_cant_say_is_accepted() -> None:
    answers = answers_clean(item_codes=CODES, data={"ratings": {CODES[0]: 1, CODES[1]: 5, CODES[2]: None}})
    assert answers.ratings == {CODES[0]: 1, CODES[1]: 5, CODES[2]: None}
    # All four comment keys are always stored, so same answers give identical rows.
    assert answers.comments == {"management": "", "leadership": "", "keep_doing": "", "start_doing": ""}


def test_missing_items_are_named() -> None:
    errors = errors_of({"ratings": {CODES[0]: 3}})
    assert errors == {"ratings": {CODES[1]: [MISSING_RATING], CODES[2]: [MISSING_RATING]}}


def test_unknown_item_codes_are_named() -> None:
    errors = errors_of({"ratings": {**dict.fromkeys(CODES, 3), "made_up-9": 3}})
    assert errors == {"ratings": {"made_up-9": [UNKNOWN_ITEM]}}


@pytest.mark.parametrize("value", [0, 6, -1, 3.0, 2.5, "3", True, False, [3], {"v": 3}])
def test_out_of_range_and_wrong_types_are_refused_naming_the_item(value: Any) -> None:
    errors = errors_of({"ratings": {**dict.fromkeys(CODES, 3), CODES[1]: value}})
    assert errors == {"ratings": {CODES[1]: [BAD_RATING]}}


@pytest.mark.parametrize("data", [None, [], "ratings", 3])
def test_answers_that_are_not_an_object_are_refused(data: Any) -> None:
    assert errors_of(data) == {"non_field_errors": ["Expected an object with “ratings” and “comments”."]}


def test_invalid_answers_raise_one_plain_message_beside_the_field_errors() -> None:
    with pytest.raises(AnswersInvalid) as raised:
        answers_clean(item_codes=CODES, data={"ratings": {}})
    assert str(raised.value) == "The answers are not valid."


def test_ratings_that_are_not_an_object_are_refused() -> None:
    assert errors_of({"ratings": [3, 3, 3]}) == {
        "ratings": ["Expected an object mapping each item code to 1–5 or null."]
    }


def test_comments_given_as_null_count_as_no_comments() -> None:
    answers = answers_clean(item_codes=CODES, data={"ratings": dict.fromkeys(CODES, 4), "comments": None})
    assert answers.comments == {"management": "", "leadership": "", "keep_doing": "", "start_doing": ""}


def test_comments_that_are_not_an_object_are_refused() -> None:
    errors = errors_of({"ratings": dict.fromkeys(CODES, 3), "comments": ["Plans well."]})
    assert errors == {"comments": ["Expected an object of texts."]}


def test_comments_over_the_limit_are_refused_naming_the_field() -> None:
    long_text = "x" * (COMMENT_MAX_LENGTH + 1)
    errors = errors_of({"ratings": dict.fromkeys(CODES, 3), "comments": {"leadership": long_text}})
    assert errors == {"comments": {"leadership": [f"At most {COMMENT_MAX_LENGTH} characters, please (this has 4001)."]}}


def test_comments_at_the_limit_are_accepted() -> None:
    text = "y" * COMMENT_MAX_LENGTH
    answers = answers_clean(
        item_codes=CODES, data={"ratings": dict.fromkeys(CODES, 3), "comments": {"management": text}}
    )
    assert answers.comments["management"] == text


def test_comments_count_characters_as_a_browser_does_for_maxlength() -> None:
    # Every character of the Basic Multilingual Plane counts one (accented Latin, CJK);
    # an emoji counts two, as in the textarea's own maxlength.
    for text in ("ü" * COMMENT_MAX_LENGTH, "漢" * COMMENT_MAX_LENGTH, "🙂" * (COMMENT_MAX_LENGTH // 2)):
        answers = answers_clean(
            item_codes=CODES, data={"ratings": dict.fromkeys(CODES, 3), "comments": {"management": text}}
        )
        assert answers.comments["management"] == text
    errors = errors_of({"ratings": dict.fromkeys(CODES, 3), "comments": {"management": "🙂" * 2001}})
    assert errors == {
        "comments": {
            "management": [f"At most {COMMENT_MAX_LENGTH} characters, please (this has 4002 — an emoji counts as two)."]
        }
    }


def test_unknown_comment_fields_and_non_text_comments_are_refused() -> None:
    errors = errors_of({"ratings": dict.fromkeys(CODES, 3), "comments": {"gossip": "x", "keep_doing": 42}})
    assert errors == {"comments": {"gossip": [UNKNOWN_COMMENT], "keep_doing": ["Must be text."]}}


def test_unknown_top_level_fields_are_refused() -> None:
    assert errors_of({"ratings": dict.fromkeys(CODES, 3), "rater": "me"}) == {"rater": ["Not a field of this survey."]}


def test_html_in_comments_is_kept_as_plain_text() -> None:
    html = "<b>Great</b> <script>alert('x')</script>"
    answers = answers_clean(
        item_codes=CODES, data={"ratings": dict.fromkeys(CODES, 2), "comments": {"start_doing": html}}
    )
    assert answers.comments["start_doing"] == html


def test_whitespace_around_a_comment_is_trimmed() -> None:
    answers = answers_clean(
        item_codes=CODES, data={"ratings": dict.fromkeys(CODES, 2), "comments": {"management": "  a\tb\r\nc \n"}}
    )
    assert answers.comments["management"] == "a\tb\r\nc"


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800", "\udfff"])
def test_characters_that_cannot_be_stored_are_refused_naming_the_comment(character: str) -> None:
    with pytest.raises(AnswersInvalid) as raised:
        answers_clean(
            item_codes=CODES,
            data={"ratings": dict.fromkeys(CODES, 2), "comments": {"leadership": f"fine{character}text"}},
        )
    assert list(raised.value.errors) == ["comments"]
    [message] = raised.value.errors["comments"]["leadership"]
    assert f"U+{ord(character):04X}, character 5" in message


def test_a_decline_reason_with_a_control_character_is_refused() -> None:
    with pytest.raises(AnswersInvalid) as raised:
        reason_clean(reason="on leave\x08")
    assert "U+0008" in raised.value.errors["reason"][0]


def test_decline_reason_has_a_limit() -> None:
    assert reason_clean(reason=" busy ") == "busy"
    assert reason_clean(reason=None) == ""
    with pytest.raises(AnswersInvalid) as raised:
        reason_clean(reason="z" * 2001)
    assert list(raised.value.errors) == ["reason"]


def test_text_that_is_not_a_string_is_refused_and_none_of_it_kept() -> None:
    assert text_clean(42, limit=10) == ("", NOT_TEXT)
    assert text_clean(None, limit=10) == ("", None)
    assert text_clean(" abc ", limit=3) == ("abc", None)
    assert text_clean("abcd", limit=3) == ("abcd", "At most 3 characters, please (this has 4).")
