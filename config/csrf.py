"""CSRF protection for pages sent with ``Referrer-Policy: no-referrer`` (every page whose
address, or whose link, carries a secret)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

View = Callable[..., HttpResponse]


def no_referrer_csrf_protect(view: View) -> View:
    """Django's CSRF protection, working under ``Referrer-Policy: no-referrer``.

    With that policy browsers send ``Origin: null`` on a same-origin form post (and no
    Referer at all), which Django's origin check rejects. The browser also sends
    ``Sec-Fetch-Site``, which no page can forge: when it says ``same-origin`` the post
    really came from our own page, so the request's own origin stands in for the null
    one. The CSRF cookie and form token are still checked exactly as everywhere else.
    """
    protected = csrf_protect(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (
            request.method == "POST"
            and request.META.get("HTTP_ORIGIN") == "null"
            and request.META.get("HTTP_SEC_FETCH_SITE") == "same-origin"
        ):
            request.META["HTTP_ORIGIN"] = f"{request.scheme}://{request.get_host()}"
        return protected(request, *args, **kwargs)

    # The check above runs in place of the middleware's, not in addition to it.
    return csrf_exempt(wrapper)
