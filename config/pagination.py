"""One way to page a list: ``?page=`` on the HTML pages, ``?limit=&offset=`` on the API.

Both are described as such where they are read: the API's envelope and parameters in the
OpenAPI schema, the pages' navigation in ``templates/_pager.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param
from rest_framework.views import APIView

# Rows on one HTML page: a screenful or two, light enough to poll.
PAGE_SIZE = 50
PAGE_PARAMETER = "page"


def _whole_number(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


def _page_suffix(number: int) -> str:
    """``?page=N`` for a link to page ``number``; nothing for page 1."""
    return f"?{PAGE_PARAMETER}={number}" if number > 1 else ""


def page_query(request: HttpRequest) -> str:
    """``?page=N`` of this request for a link or a redirect back to it, or ``""`` for page 1 or
    anything that is not a page number."""
    number = _whole_number(request.GET.get(PAGE_PARAMETER, ""))
    return _page_suffix(number) if number is not None else ""


class ListPagination(LimitOffsetPagination):
    """``?limit=&offset=`` (100 a page by default, 1,000 at most); ``{count, next, previous, results}``.

    A limit or offset that is not a whole number answers 400 naming the parameter, rather
    than a page the caller did not ask for; an offset past the end is an empty page whose
    ``count`` says how many there are.
    """

    max_limit = 1000

    def get_limit(self, request: Request) -> int | None:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.default_limit
        limit = _whole_number(raw)
        if limit is None or limit < 1:
            raise serializers.ValidationError({self.limit_query_param: ["A whole number from 1."]})
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_previous_link(self) -> str | None:
        count, offset, limit = self.count, self.offset, self.limit
        if self.request is not None and count and offset is not None and offset >= count:
            # Past the end: back to the last items there are, not to another empty page.
            last = max(count - limit, 0) if limit else 0
            url = self.request.build_absolute_uri()
            if last == 0:
                return remove_query_param(url, self.offset_query_param)
            return replace_query_param(url, self.offset_query_param, last)
        return super().get_previous_link()

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        offset = _whole_number(raw)
        if offset is None:
            raise serializers.ValidationError({self.offset_query_param: ["A whole number from 0."]})
        return offset


class PaginatedListApi(APIView):
    """An API view whose GET answers one page of a list.

    ``pagination_class`` is what drf-spectacular reads to document the page envelope and
    the ``limit`` / ``offset`` parameters, so the schema matches what ``paginated`` sends.
    """

    pagination_class = ListPagination

    def page(self, request: Request, items: QuerySet[Any] | Sequence[Any]) -> tuple[ListPagination, list[Any]]:
        """The paginator and the rows of the page asked for (a count and a slice: two queries)."""
        paginator = self.pagination_class()
        rows = paginator.paginate_queryset(items, request, view=self)
        assert rows is not None  # always a page: PAGE_SIZE is set
        return paginator, rows

    def paginated(
        self, request: Request, queryset: QuerySet[Any], serializer: type[serializers.BaseSerializer]
    ) -> Response:
        paginator, rows = self.page(request, queryset)
        return paginator.get_paginated_response(serializer(rows, many=True).data)


@dataclass(frozen=True)
class Pager:
    """One page of an HTML list, with the links to the others (``templates/_pager.html``)."""

    page: Page
    path: str

    @property
    def rows(self) -> list[Any]:
        return list(self.page.object_list)

    @property
    def paginated(self) -> bool:
        return self.page.paginator.num_pages > 1

    @property
    def count(self) -> int:
        return self.page.paginator.count

    def url(self, number: int) -> str:
        return self.path + _page_suffix(number)

    @property
    def query(self) -> str:
        """This page's ``?page=N`` for a form's action on it, so that its redirect comes back here."""
        return _page_suffix(self.page.number)

    @property
    def here(self) -> str:
        """This page's own URL: what a live part of it polls."""
        return self.url(self.page.number)

    @property
    def first_url(self) -> str:
        return self.url(1)

    @property
    def last_url(self) -> str:
        return self.url(self.page.paginator.num_pages)

    @property
    def previous_url(self) -> str | None:
        return self.url(self.page.previous_page_number()) if self.page.has_previous() else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.page.next_page_number()) if self.page.has_next() else None


class _CountedPaginator(Paginator):
    """A paginator told how many items there are, by a caller who counted them already."""

    def __init__(self, object_list: Any, per_page: int, *, count: int) -> None:
        super().__init__(object_list, per_page)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


class PageNumberInvalid(Http404):
    """A ``?page=`` that is not a whole number from 1: its 404 page says so."""


def page_get(
    request: HttpRequest,
    items: QuerySet[Any] | Sequence[Any],
    *,
    per_page: int = PAGE_SIZE,
    count: int | None = None,
) -> Pager:
    """The page of ``items`` that ``?page=`` asks for (a count and a slice: two queries;
    one when the caller counted ``items`` already and passes ``count``).

    A number past the end is the last page, so that a link kept from a longer list still
    lands somewhere; anything but a whole number from 1 is a 404 that names the parameter.
    """
    raw = request.GET.get(PAGE_PARAMETER, "1")
    number = _whole_number(raw)
    if number is None or number < 1:
        raise PageNumberInvalid(f"No such page: “{PAGE_PARAMETER}” is a whole number from 1.")
    paginator = Paginator(items, per_page) if count is None else _CountedPaginator(items, per_page, count=count)
    return Pager(page=paginator.page(min(number, paginator.num_pages)), path=request.path)
