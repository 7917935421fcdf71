"""The survey page's content: its items, comment fields, errors, and what it says of the invitation.

Every GET of the survey shows the form blank — what a rater types lives in their browser's
draft (``survey.js``) until they submit — so two first visits to the page for one
questionnaire differ only in what it says of their invitation (the role, the promise, the
deadline) and in the key and CSRF token of this browser. ``survey_page_first_visit`` renders
the rest once per process, questionnaire, language and kind of promise, from a context that
holds no request at all, and puts those few values into it for each visit
(``SurveyPageFrame``): no template render and no gzip of 70 KB per visit. A page that shows
what was posted or an error is rendered whole (``survey_page_context``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.middleware.gzip import re_accepts_gzip
from django.shortcuts import render
from django.template.defaultfilters import date as date_filter
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import get_current_timezone_name, localtime

from config.compression import CompressedPieces
from feedback.answers import CANT_SAY_LABEL, COMMENT_FIELDS, COMMENT_MAX_LENGTH, REASON_MAX_LENGTH, SCALE
from feedback.selectors import SurveyInvitation, anonymity_promise, questionnaire_dimensions, survey_role
from surveys.models import Dimension, Side

CANT_SAY = "cant_say"
RADIO_VALUES = frozenset(str(value) for value, _ in SCALE)
SURVEY_TEMPLATE = "feedback/survey.html"
# The deadline as the page states it, e.g. "Friday 4 December 2026, 17:00 UTC".
DEADLINE_FORMAT = "l j F Y, H:i T"

_CHOICES = [(str(value), str(value), label) for value, label in SCALE] + [(CANT_SAY, "", CANT_SAY_LABEL)]


def _items_blocks(
    dimensions: list[Dimension], *, values: dict[str, str], rating_errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The context of ``feedback/_items.html``: each dimension with its items, their radios,
    what the rater chose and the errors per item."""
    blocks = []
    for dimension in dimensions:
        items = []
        for item in dimension.items.all():
            items.append(
                {
                    "item": item,
                    "name": f"rating-{item.code}",
                    "selected": values.get(f"rating-{item.code}", ""),
                    "errors": rating_errors.get(item.code, []),
                    "choices": [
                        {"value": value, "number": number, "label": label, "id": f"rating-{item.code}-{value}"}
                        for value, number, label in _CHOICES
                    ],
                }
            )
        blocks.append({"dimension": dimension, "items": items})
    return blocks


def _items_render(blocks: list[dict[str, Any]]) -> SafeString:
    return mark_safe(render_to_string("feedback/_items.html", {"blocks": blocks}))  # noqa: S308 — autoescaped template


@lru_cache(maxsize=256)
def _items_blank(questionnaire_id: int, side: str, language: str) -> SafeString:
    """One side's items as a first visit shows them (nothing chosen, no error), rendered once per
    process for each questionnaire version, side and language.

    They are nearly all of the page's template work (30 items × 6 radios). The fragment holds
    nothing of the request: no CSRF token, no key, nothing typed (a page that shows what was
    typed or an error renders its items afresh).
    """
    dimensions = [
        dimension for dimension in questionnaire_dimensions(questionnaire_id=questionnaire_id) if dimension.side == side
    ]
    return _items_render(_items_blocks(dimensions, values={}, rating_errors={}))


def _comment_render(field: dict[str, Any]) -> SafeString:
    context = {"field": field, "comment_max_length": COMMENT_MAX_LENGTH}
    return mark_safe(render_to_string("feedback/_comment.html", context))  # noqa: S308 — autoescaped template


@lru_cache(maxsize=64)
def _comment_blank(name: str, language: str) -> SafeString:
    """A comment field as a first visit shows it (empty, no error), rendered once per process
    and language: it holds nothing of the request."""
    label = dict(COMMENT_FIELDS)[name]
    return _comment_render({"name": f"comment-{name}", "label": label, "value": "", "errors": []})


def _form_context(
    questionnaire_id: int, *, values: dict[str, str] | None = None, errors: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The form: every item and comment field, with what the rater typed (``values``) and errors per field."""
    values = values or {}
    errors = errors or {}
    rating_errors: dict[str, list[str]] = errors["ratings"] if isinstance(errors.get("ratings"), dict) else {}
    comment_errors: dict[str, list[str]] = errors["comments"] if isinstance(errors.get("comments"), dict) else {}
    dimensions = questionnaire_dimensions(questionnaire_id=questionnaire_id)
    blank = not rating_errors and not any(name.startswith("rating-") for name in values)
    by_side: dict[str, list[Dimension]] = {}
    for dimension in dimensions:
        by_side.setdefault(dimension.side, []).append(dimension)
    comments = {
        name: {
            "name": f"comment-{name}",
            "label": label,
            "value": values.get(f"comment-{name}", ""),
            "errors": comment_errors.get(name, []),
        }
        for name, label in COMMENT_FIELDS
    }
    language = translation.get_language() or ""
    for name, field in comments.items():
        blank_field = not field["value"] and not field["errors"]
        field["html"] = _comment_blank(name, language) if blank_field else _comment_render(field)
    sides = [
        {
            "side": side,
            "label": Side(side).label,
            "items_html": (
                _items_blank(questionnaire_id, side, language)
                if blank
                else _items_render(_items_blocks(side_dimensions, values=values, rating_errors=rating_errors))
            ),
            "comment": comments[side],
        }
        for side, side_dimensions in by_side.items()
    ]
    items = [item for dimension in dimensions for item in dimension.items.all()]
    answered = sum(1 for item in items if values.get(f"rating-{item.code}"))
    error_links = [
        {"anchor": f"rating-{item.code}", "text": item.text} for item in items if rating_errors.get(item.code)
    ] + [{"anchor": field["name"], "text": field["label"]} for field in comments.values() if field["errors"]]
    if errors.get("reason"):
        error_links.append({"anchor": "decline-reason", "text": "Reason for declining"})
    shown = {link["anchor"] for link in error_links}
    # Errors with no field on the page (a tampered or outdated form) are listed in the summary.
    other_errors = [
        f"{code}: {message}"
        for code, messages in rating_errors.items()
        if f"rating-{code}" not in shown
        for message in messages
    ]
    other_errors += [
        message
        for field, messages in errors.items()
        if field not in ("ratings", "comments", "reason") and isinstance(messages, list)
        for message in messages
    ]
    return {
        "sides": sides,
        "open_questions": [comments["keep_doing"], comments["start_doing"]],
        "total": len(items),
        "answered": answered,
        "has_errors": bool(errors),
        "error_links": error_links,
        "error_count": len(error_links) + len(other_errors),
        "other_errors": other_errors,
        # The scale's ends, spelled out once per side where the phone shows numbers only.
        "scale_low": SCALE[0][1].lower(),
        "scale_high": SCALE[-1][1].lower(),
        "cant_say": CANT_SAY_LABEL.lower(),
        "comment_max_length": COMMENT_MAX_LENGTH,
        "reason_max_length": REASON_MAX_LENGTH,
        "reason": values.get("reason", ""),
        "reason_errors": errors.get("reason", []),
    }


@lru_cache(maxsize=256)
def _deadline_shown(deadline: datetime, zone: str, language: str) -> tuple[str, str]:
    """The deadline as the page writes it (machine-readable, and in words), once per cycle's
    deadline, time zone and language: the same for every rater of a cycle."""
    # In the current time zone, as the template's date filter takes a datetime.
    local = localtime(deadline)
    return date_filter(local, "c"), date_filter(local, DEADLINE_FORMAT)


# What the page says of one invitation (``_invitation_context``): the values that differ
# between two first visits to one copy of the page, with this browser's CSRF token.
INVITATION_FIELDS = ("key", "role", "promise", "deadline_iso", "deadline_text")


def _invitation_context(invitation: SurveyInvitation, key: str) -> dict[str, Any]:
    """What the page says of this invitation, and this browser's key for it."""
    deadline_iso, deadline_text = _deadline_shown(
        invitation.deadline, get_current_timezone_name(), translation.get_language() or ""
    )
    context = {
        "key": key,
        "role": survey_role(group=invitation.group, subject_name=invitation.subject_name),
        "promise": anonymity_promise(
            group=invitation.group,
            subject_name=invitation.subject_name,
            anonymity_min=invitation.anonymity_min,
            comment_threshold=invitation.comment_threshold,
            source=invitation.source,
        ),
        "deadline_iso": deadline_iso,
        "deadline_text": deadline_text,
    }
    # A field added here must be a slot of the copy (below), or every rater would see the first one's.
    assert tuple(context) == INVITATION_FIELDS
    return context


def survey_page_context(
    invitation: SurveyInvitation,
    key: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the survey page shows, with what the rater typed (``values``) and errors per field."""
    return {
        **_form_context(invitation.questionnaire_id, values=values, errors=errors),
        **_invitation_context(invitation, key),
    }


# --- a first visit, from a copy rendered once -------------------------------------------------

# The slots of the copy. The promise's text is one; whether it is identified (a class on its
# section) picks the copy.
FRAME_SLOTS = (*INVITATION_FIELDS, "csrf_token")
# Markers put in the slots' place for the one render; random per process, so that no text of a
# questionnaire can be taken for one. Letters and digits only: a URL and HTML escaping keep them.
_MARKERS = {slot: f"surveyslot{secrets.token_hex(8)}{index}x" for index, slot in enumerate(FRAME_SLOTS)}


@dataclass(frozen=True)
class SurveyPageFrame:
    """A first visit's page for one questionnaire, language and kind of promise: its text
    between the slots, kept as text and compressed (``CompressedPieces``), and the slots' order."""

    pieces: CompressedPieces
    # Which slot goes after each piece but the last (a slot such as the key comes more than once).
    order: tuple[str, ...]

    def values_in_order(self, values: dict[str, str]) -> list[str]:
        return [values[slot] for slot in self.order]


@lru_cache(maxsize=64)
def survey_page_frame(questionnaire_id: int, language: str, identified: bool, script_prefix: str) -> SurveyPageFrame:
    """Render the first visit's page once, with markers in its slots, from no request at all:
    no session, no user, no message, no CSRF token of anyone's (the markers stand for them).

    Its links and static files' addresses start with ``script_prefix``, which the caller
    makes sure is the site's own. Kept until the process ends, like the questionnaire it
    shows (a version in use does not change); a template edited under the development
    server's reloader shows after a restart.
    """
    context = {
        **_form_context(questionnaire_id),
        **{slot: _MARKERS[slot] for slot in FRAME_SLOTS},
        "promise": {"identified": identified, "statement": _MARKERS["promise"]},
        "user": AnonymousUser(),
        "messages": (),
    }
    assert get_script_prefix() == script_prefix
    html = render_to_string(SURVEY_TEMPLATE, context)
    slot_by_marker = {marker: slot for slot, marker in _MARKERS.items()}
    # Text, marker, text, …, text: the markers are letters and digits, nothing to escape.
    split = re.split(f"({'|'.join(slot_by_marker)})", str(html))
    pieces, order = split[::2], [slot_by_marker[marker] for marker in split[1::2]]
    # Every slot but the CSRF token's is required on the page: a template edit that drops one
    # would otherwise go unnoticed here. The token's shows where the template has {% csrf_token %}.
    missing = set(FRAME_SLOTS) - set(order) - {"csrf_token"}
    if missing:
        raise ValueError(f"{SURVEY_TEMPLATE} no longer shows {sorted(missing)}")
    return SurveyPageFrame(pieces=CompressedPieces(pieces), order=tuple(order))


def _site_script_prefix() -> str:
    """The prefix of the site's own addresses, as Django sets it for a request (with a final /)."""
    prefix = settings.FORCE_SCRIPT_NAME or "/"
    return prefix if prefix.endswith("/") else f"{prefix}/"


def _csrf_secret_for_a_stored_block(request: HttpRequest) -> str:
    """The form token of a first visit's gzip stream, where it travels as a stored block: the
    browser's CSRF secret itself, once the request holds one.

    Django's ``get_token`` masks the secret afresh for every page, and sets the cookie again,
    only so that the size of a compressed page cannot give the secret away (BREACH): beside
    text an attacker chooses, in one compressed stream, each guess that matches makes the page
    shorter. A stored block is compressed with nothing, so its size is its length whatever it
    holds; Django's check takes the bare secret as a form token as readily as a masked one.
    Only for that stream: a page sent uncompressed may still be compressed on its way (a proxy
    that compresses what a client asks for in another spelling than Django's test reads).
    """
    # Set by CsrfViewMiddleware.process_request: the secret of a valid cookie, or a new one
    # (to be set as the cookie) in place of an invalid cookie. Without a cookie, get_token
    # makes one, and the cookie, and masks it.
    secret = request.META.get("CSRF_COOKIE")
    if isinstance(secret, str):
        return secret
    return get_token(request)


def survey_page_first_visit(request: HttpRequest, invitation: SurveyInvitation, key: str) -> HttpResponse:
    """The survey page as a first visit (GET or HEAD) shows it: blank, ``survey.js`` restores a draft.

    Rendered whole instead, for that request only: a signed-in user's page (it has the site's
    navigation), one with a message waiting to be shown once, and one asked for under another
    script prefix than the site's (a ``SCRIPT_NAME`` header through a proxy would otherwise
    put its prefix in every rater's form addresses).
    """
    if (
        request.user.is_authenticated
        or len(messages.get_messages(request))
        or get_script_prefix() != _site_script_prefix()
    ):
        return render(request, SURVEY_TEMPLATE, survey_page_context(invitation, key))
    invitation_context = _invitation_context(invitation, key)
    promise = invitation_context["promise"]
    frame = survey_page_frame(
        invitation.questionnaire_id,
        translation.get_language() or "",
        bool(promise["identified"]),
        _site_script_prefix(),
    )
    # Escaped as the template escapes them. The key is one this browser's cookie holds
    # (letters, digits, - and _): the same in a URL and in HTML, as {% url %} and {{ key }} put it.
    values = {
        slot: str(conditional_escape(promise["statement"] if slot == "promise" else invitation_context[slot]))
        for slot in INVITATION_FIELDS
    }
    gzipped = bool(re_accepts_gzip.search(request.META.get("HTTP_ACCEPT_ENCODING", "")))
    if "csrf_token" in frame.order:
        token = _csrf_secret_for_a_stored_block(request) if gzipped else get_token(request)
        values["csrf_token"] = str(conditional_escape(token))
    in_order = frame.values_in_order(values)
    if gzipped:
        response = HttpResponse(frame.pieces.gzip(in_order))
        response["Content-Encoding"] = "gzip"
    else:
        response = HttpResponse(frame.pieces.text(in_order))
    # The form token comes from the CSRF cookie (and Django adds this when it sets the cookie).
    patch_vary_headers(response, ("Accept-Encoding", "Cookie"))
    return response
