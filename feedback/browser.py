"""What a rater's browser keeps between the emailed link and the stored answer: one sealed cookie.

``/s/<token>/`` gives the browser a random key for the invitation and sends it on to
``/survey/<key>/`` (see ``feedback.views``). Which invitation a key stands for is kept in
the browser itself, in a cookie encrypted and authenticated with a key derived from
``SECRET_KEY`` (so it can be neither forged, edited nor read), not in a server-side session:

* nothing on the server — no session row, no row version, no WAL record, no backup — ever
  pairs a browser with an invitation, before or after the answer;
* storing an answer takes one commit, the answer's own, with no session write after it.

Beside each key the cookie keeps what a submit needs of its invitation — cycle, subject,
group, questionnaire, who chose the rater; none of which changes while it is open — so that storing the answer
needs no read before its one statement (which checks them against the rows). The moment
an answer or a decline is stored, the cookie is written again without that invitation: it
then keeps only the bare key (to show "thank you"), never which invitation it was. The
cookie expires ``SURVEY_COOKIE_AGE`` after it was last written (60 days, as long as the
draft the page keeps in the browser), with a session cookie's flags (``Secure`` in
production, ``HttpOnly``, ``SameSite``).

Signing alone would leave the cookie readable to whoever sees it (the device, a browser
sync, a HAR file sent to support): the ids of the invitations still open — ids a manager
sees beside each rater's name in the raters API — and, in a signature's clear timestamp,
the second of the last answer. Which of a rater's surveys are done, and when, is for
nobody to read. So the cookie is AES-GCM with a random nonce, and the time it was written
(for its expiry) sits inside.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.crypto import salted_hmac

from feedback.services import OpenInvitation
from surveys.models import Group, Invitation

COOKIE_NAME = "b360_survey"
_SALT = "feedback.browser"
# Finished keys kept to show "thank you" at their address (the oldest go first).
DONE_KEPT = 50
# Browsers drop a cookie larger than 4,096 bytes whole: it is trimmed below that instead,
# the oldest held invitations first (their submits then read them), then the oldest
# finished keys, then the oldest open surveys (whose links open them again).
_COOKIE_MAX_BYTES = 3800

View = Callable[..., HttpResponse]


@dataclass
class SurveyBrowser:
    """{key: invitation id} of the surveys opened in this browser, what a submit needs of each
    (``held``), and the keys it finished."""

    surveys: dict[str, int] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    held: dict[str, OpenInvitation] = field(default_factory=dict)
    changed: bool = False

    def key_open(self, invitation: OpenInvitation) -> str:
        """This browser's key for the invitation: the one it already has, or a new one."""
        for key, known in self.surveys.items():
            if known == invitation.id:
                if self.held.get(key) != invitation:
                    self.held[key] = invitation
                    self.changed = True
                return key
        key = secrets.token_urlsafe(16)
        self.surveys[key] = invitation.id
        self.held[key] = invitation
        self.changed = True
        return key

    def invitation_id(self, key: str) -> int | None:
        return self.surveys.get(key)

    def invitation_held(self, key: str) -> OpenInvitation | None:
        """What a submit needs of the key's invitation, if this browser keeps it (a cookie
        written before it did holds the id alone)."""
        return self.held.get(key)

    def is_done(self, key: str) -> bool:
        return key in self.done

    def forget(self, key: str, *, done: bool) -> None:
        """Drop the key's invitation; with ``done``, keep the bare key to show "thank you"."""
        self.surveys.pop(key, None)
        self.held.pop(key, None)
        if done and key not in self.done:
            self.done = [*self.done, key][-DONE_KEPT:]
        self.changed = True

    def encoded(self) -> str:
        while True:
            surveys = {
                key: _held_encoded(self.held[key]) if key in self.held else pk for key, pk in self.surveys.items()
            }
            value = _seal({"s": surveys, "d": self.done, "t": int(time.time())})
            if len(value) <= _COOKIE_MAX_BYTES:
                return value
            # What goes first costs least: a held invitation only saves its submit a read.
            if self.held:
                self.held.pop(next(key for key in self.surveys if key in self.held))
            elif self.done:
                self.done = self.done[1:]
            else:
                self.surveys.pop(next(iter(self.surveys)))


# The group and the source by their positions, one digit whichever they are: their names
# would make the cookie's length, which anyone on the path sees, depend on the rater's group.
_GROUPS: tuple[str, ...] = tuple(Group.values)
_SOURCES: tuple[str, ...] = tuple(Invitation.Source.values)


def _held_encoded(invitation: OpenInvitation) -> list[Any]:
    group = _GROUPS.index(invitation.group)
    source = _SOURCES.index(invitation.source)
    return [invitation.id, invitation.cycle_id, invitation.subject_id, group, invitation.questionnaire_id, source]


def _held_decoded(value: Any) -> OpenInvitation | None:
    if not isinstance(value, list) or len(value) != 6:
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in value):
        return None
    pk, cycle_id, subject_id, group, questionnaire_id, source = value
    if not (0 <= group < len(_GROUPS) and 0 <= source < len(_SOURCES)):
        return None
    return OpenInvitation(pk, cycle_id, subject_id, _GROUPS[group], questionnaire_id, _SOURCES[source])


def _id_of_earlier_held(value: Any) -> int | None:
    """The invitation id of what a cookie written before the source was kept holds (five numbers,
    without it): the key still opens its survey, whose submit then reads the invitation."""
    if isinstance(value, list) and len(value) == 5 and isinstance(value[0], int) and not isinstance(value[0], bool):
        return value[0]
    return None


def _ciphers() -> tuple[AESGCM, ...]:
    """The cookie's keys: the first seals, every one opens (``SECRET_KEY_FALLBACKS`` rotate it)."""
    return _ciphers_of((settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])))


@lru_cache(maxsize=4)
def _ciphers_of(secrets_: tuple[str, ...]) -> tuple[AESGCM, ...]:
    # Derived once per set of secrets, not on every request that reads or writes the cookie.
    return tuple(
        AESGCM(salted_hmac(_SALT, "survey cookie key", secret=secret, algorithm="sha256").digest())
        for secret in secrets_
    )


def _seal(data: dict[str, Any]) -> str:
    nonce = os.urandom(12)
    plain = json.dumps(data, separators=(",", ":")).encode()
    sealed = nonce + _ciphers()[0].encrypt(nonce, plain, COOKIE_NAME.encode())
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def _open(value: str) -> Any:
    """The cookie's data, or ``None`` if it is forged, altered, garbled or expired."""
    try:
        sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    nonce, box = sealed[:12], sealed[12:]
    for cipher in _ciphers():
        try:
            data = json.loads(cipher.decrypt(nonce, box, COOKIE_NAME.encode()))
        except (InvalidTag, ValueError):
            continue
        written = data.get("t") if isinstance(data, dict) else None
        # No lower bound: only this service writes the time, and web servers' clocks differ a little.
        if not isinstance(written, int) or time.time() - written > settings.SURVEY_COOKIE_AGE:
            return None
        return data
    return None


def survey_browser_decode(value: str | None) -> SurveyBrowser:
    data = _open(value) if value else None
    if data is None:  # forged, altered or expired: as if there were none
        return SurveyBrowser()
    surveys = data.get("s") if isinstance(data, dict) else None
    done = data.get("d") if isinstance(data, dict) else None
    browser = SurveyBrowser(done=[key for key in (done if isinstance(done, list) else ()) if isinstance(key, str)])
    for key, value in surveys.items() if isinstance(surveys, dict) else ():
        if not isinstance(key, str):
            continue
        held = _held_decoded(value)
        if held is not None:
            browser.surveys[key] = held.id
            browser.held[key] = held
        elif isinstance(value, int) and not isinstance(value, bool):
            browser.surveys[key] = value
        elif (earlier := _id_of_earlier_held(value)) is not None:
            browser.surveys[key] = earlier
    return browser


def survey_browser(request: HttpRequest) -> SurveyBrowser:
    """The state of this request's browser (read from its cookie once per request)."""
    holder = cast(Any, request)
    browser = getattr(holder, "_survey_browser", None)
    if browser is None:
        browser = survey_browser_decode(request.COOKIES.get(COOKIE_NAME))
        holder._survey_browser = browser
    return cast(SurveyBrowser, browser)


def survey_browser_kept(view: View) -> View:
    """Write the browser's cookie again after ``view`` if the view changed what it keeps."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        browser = getattr(request, "_survey_browser", None)
        if isinstance(browser, SurveyBrowser) and browser.changed:
            if browser.surveys or browser.done:
                response.set_cookie(
                    COOKIE_NAME,
                    browser.encoded(),
                    max_age=settings.SURVEY_COOKIE_AGE,
                    path="/",
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
            else:
                response.delete_cookie(
                    COOKIE_NAME,
                    path="/",
                    domain=settings.SESSION_COOKIE_DOMAIN,
                    samesite=settings.SESSION_COOKIE_SAMESITE,
                )
        return response

    return wrapper
