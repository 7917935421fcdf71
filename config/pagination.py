"""One way to page a list endpoint, described as such in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class ListPagination(LimitOffsetPagination):
    """``?limit=&offset=`` (100 a page by default, 1,000 at most); ``{count, next, previous, results}``."""

    max_limit = 1000


class PaginatedListApi(APIView):
    """An API view whose GET answers one page of a list.

    ``pagination_class`` is what drf-spectacular reads to document the page envelope and
    the ``limit`` / ``offset`` parameters, so the schema matches what ``paginated`` sends.
    """

    pagination_class = ListPagination

    def paginated(
        self, request: Request, queryset: QuerySet[Any], serializer: type[serializers.BaseSerializer]
    ) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        assert page is not None  # always a page: PAGE_SIZE is set
        return paginator.get_paginated_response(serializer(page, many=True).data)
