"""The shape of a rater's answers and the one function that validates them.

Both the HTML survey and the JSON API hand their input to ``answers_clean`` (through
``response_submit``), so the two can never accept different things. Errors come back in
DRF's shape, one message list per field: ``{"ratings": {code: [message]}, "comments":
{name: [message]}}``, which the API returns as is and the page shows next to each field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.text import text_problem
from surveys.vocabulary import COMMENT_PROMPTS, COMMENT_QUESTIONS

RATING_MIN = 1
RATING_MAX = 5
SCALE: tuple[tuple[int, str], ...] = (
    (1, "Strongly disagree"),
    (2, "Disagree"),
    (3, "Neither agree nor disagree"),
    (4, "Agree"),
    (5, "Strongly agree"),
)
CANT_SAY_LABEL = "Can't say"

# Every stored response carries all four keys (empty when not answered), so two raters
# of one group who gave the same answers produce identical rows.
COMMENT_FIELDS: tuple[tuple[str, str], ...] = tuple((name, COMMENT_PROMPTS[name]) for name in COMMENT_QUESTIONS)
COMMENT_NAMES: tuple[str, ...] = COMMENT_QUESTIONS
# In characters as a browser counts them for a text field's ``maxlength`` (UTF-16 code units:
# an emoji or another character beyond the Basic Multilingual Plane counts as two), so the
# form's own limit and the server's agree, and a text's stored size is bounded at two bytes
# a character (feedback.sealing).
COMMENT_MAX_LENGTH = 4000
REASON_MAX_LENGTH = 2000

MISSING_RATING = "Choose an answer from 1 to 5, or “Can't say”."
BAD_RATING = "Must be a whole number from 1 to 5, or null for “Can't say”."
UNKNOWN_ITEM = "Not an item of this survey."
UNKNOWN_COMMENT = "Not a comment field of this survey."
NOT_TEXT = "Must be text."


class AnswersInvalid(Exception):
    """Raised with DRF-shaped ``errors`` when answers cannot be stored."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("The answers are not valid.")
        self.errors = errors


@dataclass(frozen=True)
class Answers:
    ratings: dict[str, int | None]
    comments: dict[str, str]


def text_length(text: str) -> int:
    """The length of ``text`` as a browser counts it for ``maxlength`` (UTF-16 code units)."""
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


def _too_long(text: str, limit: int) -> str:
    length = text_length(text)
    wide = " — an emoji counts as two" if length != len(text) else ""
    return f"At most {limit} characters, please (this has {length}{wide})."


def text_clean(value: Any, *, limit: int) -> tuple[str, str | None]:
    """(cleaned text, error). Text is stored exactly as typed — never as HTML — and escaped on output.

    Characters PostgreSQL cannot store (NUL, unpaired surrogates) and control characters
    are refused with a message saying where, not dropped: the rater sees what was wrong.
    """
    if value is None:
        return "", None
    if not isinstance(value, str):
        return "", NOT_TEXT
    text = value.strip()
    if text_length(text) > limit:
        return text, _too_long(text, limit)
    return text, text_problem(text)


def answers_clean(*, item_codes: Sequence[str], data: Any) -> Answers:
    """Check ``data`` (``{"ratings": {...}, "comments": {...}}``) against the questionnaire's items."""
    if not isinstance(data, Mapping):
        raise AnswersInvalid({"non_field_errors": ["Expected an object with “ratings” and “comments”."]})
    errors: dict[str, Any] = {}

    raw_ratings = data.get("ratings")
    ratings: dict[str, int | None] = {}
    if not isinstance(raw_ratings, Mapping):
        errors["ratings"] = ["Expected an object mapping each item code to 1–5 or null."]
    else:
        rating_errors: dict[str, list[str]] = {}
        for code in item_codes:
            if code not in raw_ratings:
                rating_errors[code] = [MISSING_RATING]
                continue
            value = raw_ratings[code]
            # bool is an int in Python; ``true`` is not an answer on a 1–5 scale.
            if value is None or (
                isinstance(value, int) and not isinstance(value, bool) and RATING_MIN <= value <= RATING_MAX
            ):
                ratings[code] = value
            else:
                rating_errors[code] = [BAD_RATING]
        known = set(item_codes)
        for code in raw_ratings:
            if code not in known:
                rating_errors[str(code)] = [UNKNOWN_ITEM]
        if rating_errors:
            errors["ratings"] = rating_errors

    raw_comments = data.get("comments", {})
    comments: dict[str, str] = dict.fromkeys(COMMENT_NAMES, "")
    if raw_comments is None:
        raw_comments = {}
    if not isinstance(raw_comments, Mapping):
        errors["comments"] = ["Expected an object of texts."]
    else:
        comment_errors: dict[str, list[str]] = {}
        for name, value in raw_comments.items():
            if name not in comments:
                comment_errors[str(name)] = [UNKNOWN_COMMENT]
                continue
            comments[name], error = text_clean(value, limit=COMMENT_MAX_LENGTH)
            if error:
                comment_errors[name] = [error]
        if comment_errors:
            errors["comments"] = comment_errors

    unknown_keys = sorted(str(key) for key in data if key not in ("ratings", "comments"))
    for key in unknown_keys:
        errors[key] = ["Not a field of this survey."]

    if errors:
        raise AnswersInvalid(errors)
    return Answers(ratings=ratings, comments=comments)


def reason_clean(*, reason: Any) -> str:
    text, error = text_clean(reason, limit=REASON_MAX_LENGTH)
    if error:
        raise AnswersInvalid({"reason": [error]})
    return text
