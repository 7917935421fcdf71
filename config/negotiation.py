"""DRF's content negotiation, with the answer to the commonest request worked out without parsing.

Every API client of this service sends no ``Accept`` header, ``*/*`` or ``application/json``,
and every endpoint's first renderer writes JSON: DRF would still parse the header into media
types and match each against each renderer on every request (a twentieth of a survey submit's
processor time). Those requests get the first renderer at once, exactly as DRF would choose
it; any other header, a format suffix or a ``?format=`` goes through DRF's own rules (and gets
its 406 when nothing matches).
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

JSON = "application/json"
# What DRF reads as "anything" or as JSON alone; an empty header matches no renderer (406).
_ACCEPTING_JSON = frozenset({"*/*", JSON})


class JSONFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        first = renderers[0] if renderers else None
        if (
            first is not None
            and first.media_type == JSON
            and format_suffix is None
            and request.META.get("HTTP_ACCEPT", "*/*").strip() in _ACCEPTING_JSON
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, JSON
        chosen: tuple[BaseRenderer, str] = super().select_renderer(request, renderers, format_suffix)
        return chosen
