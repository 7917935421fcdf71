"""The API's content negotiation (config/negotiation.py): the same choice as DRF's, with the
commonest requests answered without parsing their Accept header."""

from __future__ import annotations

import pytest
from django.http import Http404
from django.test import Client
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from config.negotiation import JSONFirstNegotiation

ACCEPT_HEADERS = [
    None,
    "",
    "   ",
    "*/*",
    "application/json",
    " application/json ",
    "application/json; indent=4",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "text/html",
    "application/xml",
]
RENDERER_LISTS = [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()], [BrowsableAPIRenderer(), JSONRenderer()]]


def choice(
    negotiation: DefaultContentNegotiation,
    request: Request,
    renderers: list[BaseRenderer],
    format_suffix: str | None = None,
) -> object:
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, format_suffix)
    except NotAcceptable:
        return "406"
    except Http404:  # a format no renderer writes
        return "404"
    return type(renderer), media_type


def api_request(accept: str | None, query: str = "") -> Request:
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    return Request(APIRequestFactory().get(f"/api/anything/{query}", **headers))


@pytest.mark.parametrize("accept", ACCEPT_HEADERS)
@pytest.mark.parametrize("renderers", RENDERER_LISTS, ids=["json", "json-browsable", "browsable-json"])
@pytest.mark.parametrize("query", ["", "?format=api", "?format=json"])
@pytest.mark.parametrize("suffix", [None, "json", "api"])
def test_the_choice_is_drfs_for_every_header(
    accept: str | None, renderers: list[BaseRenderer], query: str, suffix: str | None
) -> None:
    request = api_request(accept, query)
    ours = choice(JSONFirstNegotiation(), request, renderers, suffix)
    assert ours == choice(DefaultContentNegotiation(), request, renderers, suffix)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_a_json_request_is_answered_without_parsing_its_header(
    monkeypatch: pytest.MonkeyPatch, accept: str | None
) -> None:
    def unparsed(*args: object) -> None:
        raise AssertionError("the Accept header was parsed")

    monkeypatch.setattr(DefaultContentNegotiation, "get_accept_list", unparsed)
    assert choice(JSONFirstNegotiation(), api_request(accept), [JSONRenderer()]) == (JSONRenderer, "application/json")


@pytest.mark.django_db
def test_the_api_still_refuses_what_it_cannot_write(client: Client) -> None:
    response = client.get("/api/survey/unknown-token/", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert response.json()["detail"]
    response = client.get("/api/survey/unknown-token/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
