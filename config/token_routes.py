"""Every URL that carries a secret token in its path, in one place.

The URL patterns (``token_path``), the links in emails (``token_url``) and the log
redaction (``config.logging``) all read ``TOKEN_ROUTES``, so a new kind of link cannot
be served without its token being redacted from the logs, and without the throttle on
unknown links: a test checks that every URL pattern with a ``token`` goes through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class TokenRoute:
    prefix: str
    what: str
    # Dotted path of the ``(*, token)`` lookup that finds what the token was issued for,
    # whatever its state. A dead link that was issued — a rater reopening their link after
    # answering — is not a guess, and does not count against the caller's address.
    lookup: str


SURVEY = TokenRoute(
    "s", "a rater's survey link, exchanged for a browser key at once", "surveys.selectors.invitation_get_by_token"
)
SURVEY_API = TokenRoute(
    "api/survey", "the survey API, keyed by the same token", "surveys.selectors.invitation_get_by_token"
)
NOMINATION = TokenRoute("n", "a subject's link to choose their raters", "surveys.selectors.nomination_get_by_token")
RELEASE = TokenRoute(
    "r", "a subject's download link to their released report", "reports.selectors.release_get_by_token"
)
TOKEN_ROUTES: tuple[TokenRoute, ...] = (SURVEY, SURVEY_API, NOMINATION, RELEASE)

# A path parameter only token routes may use: the access test looks for it.
TOKEN_PARAMETER = "token"  # noqa: S105 (the name of a URL parameter)


def token_url(route: TokenRoute, token: str) -> str:
    """An absolute link from the configured base, never from the request's Host header."""
    return f"{settings.PUBLIC_BASE_URL}/{route.prefix}/{token}/"


def link_dead(response: Any) -> Any:
    """Mark the answer to a token that leads nowhere (unknown, expired, used, revoked).

    Views answer such links alike, whatever the reason; the mark lets ``token_path``
    count them against the caller's address.
    """
    response.link_dead = True
    return response


def link_locked_response(route: TokenRoute, wait: int) -> HttpResponse:
    """The 429 for an address locked out of secret links (``config.throttling``), alike for any link."""
    from config.throttling import minutes

    message = f"Too many links that lead nowhere were opened from your network. Try again in {minutes(wait)}."
    response: HttpResponse
    if route is SURVEY_API:
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(render_to_string("too_many_links.html", {"message": message}), status=429)
    response["Retry-After"] = str(wait)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    # Django's request logger would write the path, token and all, for this 4xx.
    return unlogged(response)


def unlogged(response: Any) -> Any:
    """Keep Django's request logger from writing this response's path (it holds a token).

    ``django.utils.log.log_response`` skips responses flagged this way.
    """
    response._has_been_logged = True
    return response


def _throttled(
    route: TokenRoute, view: Callable[..., HttpResponse], *, lockout_read_by_view: frozenset[str]
) -> Callable[..., HttpResponse]:
    from config.throttling import link_miss_record, link_wait

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Checked before the token is looked at (or, for a view that reads it with its link,
        # answered before anything of the link is used): a blocked address learns nothing of it.
        if request.method not in lockout_read_by_view:
            wait = link_wait(request)
            if wait is not None:
                return link_locked_response(route, wait)
        response = view(request, *args, **kwargs)
        if getattr(response, "link_dead", False) and _never_issued(route, str(kwargs.get(TOKEN_PARAMETER))):
            link_miss_record(request)
        return response

    return wrapper


def _never_issued(route: TokenRoute, token: str) -> bool:
    return import_string(route.lookup)(token=token) is None


def token_path(
    route: TokenRoute,
    view: Callable[..., HttpResponse],
    *,
    name: str,
    tail: str = "",
    lockout_read_by_view: Iterable[str] = (),
) -> URLPattern:
    """``path("<prefix>/<str:token>/<tail>", view)``, throttled on dead links.

    ``lockout_read_by_view``: the HTTP methods for which the view reads the caller's
    lock-out itself, in the statement that reads its link (``config.throttling.link_wait_sql``),
    and answers ``link_locked_response`` before it does anything else. For every other
    method it is read here, before the view runs.
    """
    throttled = _throttled(route, view, lockout_read_by_view=frozenset(lockout_read_by_view))
    return path(f"{route.prefix}/<str:{TOKEN_PARAMETER}>/{tail}", throttled, name=name)
