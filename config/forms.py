"""A urlencoded form's fields read into ``request.POST`` at a fraction of what Django's parsing costs.

Django builds ``request.POST`` field by field: each of the survey form's 35 fields goes through
about ten calls of ``QueryDict.appendlist``, ``setlistdefault`` and ``bytes_to_text``, which
cost the form's submit more than the standard library's parsing of the whole body did
(docs/BENCHMARKS.md). ``form_fields_parse`` gives ``request.POST`` the same ``QueryDict`` from
the same parsing (``urllib.parse.parse_qsl`` with Django's arguments and limits), grouped in
one pass. Whatever it does not handle the same way — another content type, a body already
read as a stream, a charset other than UTF-8 — it leaves to Django.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, QueryDict, UnreadablePostError
from django.utils.datastructures import MultiValueDict

View = Callable[..., HttpResponse]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def form_fields(body: bytes) -> QueryDict:
    """``body`` as Django's ``QueryDict(body, encoding="utf-8")`` reads it: the same keys, the
    same lists in the same order, the same ``TooManyFieldsSent`` past
    ``DATA_UPLOAD_MAX_NUMBER_FIELDS``, and immutable."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # As Django reads a misbehaving user agent's body.
        text = body.decode("iso-8859-1")
    grouped: dict[str, list[str]] = {}
    try:
        for key, value in parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", max_num_fields=settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        ):
            grouped.setdefault(key, []).append(value)
    except ValueError as error:
        raise TooManyFieldsSent(
            "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
        ) from error
    fields = QueryDict(mutable=True, encoding="utf-8")
    # A MultiValueDict is a dict of each key's list: the lists go in whole, as appendlist
    # would have left them, without a call per value.
    dict.update(fields, grouped)
    fields._mutable = False
    return fields


def form_fields_parse(request: HttpRequest) -> None:
    """Give a urlencoded POST its ``request.POST`` (and empty ``request.FILES``) before
    anything asks for them; ``RequestDataTooBig`` past ``DATA_UPLOAD_MAX_MEMORY_SIZE``, as Django."""
    holder: Any = request
    if (
        request.method != "POST"
        or request.content_type != FORM_CONTENT_TYPE
        or hasattr(holder, "_post")
        # A body read as a stream already: Django says so in its own way.
        or (holder._read_started and not hasattr(holder, "_body"))
        # Django refuses any charset but UTF-8 for this content type, with its own error.
        or (request.encoding is not None and request.encoding.lower() != "utf-8")
    ):
        return
    try:
        body = request.body
    except UnreadablePostError:
        # The client went away mid-body: Django's own reading marks the form unreadable and
        # its CSRF check answers 403, as it did before this read.
        return
    holder._post = form_fields(body)
    holder._files = MultiValueDict()


def form_fields_parsed(view: View) -> View:
    """``form_fields_parse`` before ``view`` (and before a CSRF check inside it, which reads the form's token).

    The body is then read before the CSRF check looks at the request's origin and cookie, so a
    cross-site post of a body too large or with too many fields is refused for that (413, 400)
    rather than with a 403; either way nothing is stored, and the other site reads no answer.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form_fields_parse(request)
        return view(request, *args, **kwargs)

    return wrapper
