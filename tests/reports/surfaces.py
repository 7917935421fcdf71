"""Everything a signed-in role can reach, as the text a person (or a script) would read."""

from __future__ import annotations

import html
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.reports.adversary import visible_text

# Routes that hold no data of the product: the sign-out, the admin (superusers only), the
# API's own documentation, and the public links keyed by a secret token a manager does
# not hold.
SKIPPED_PREFIXES = ("admin/", "accounts/logout/", "api/schema/", "api/docs/", "healthz")
TOKEN_PARAMETERS = {"token", "key"}


def _routes(patterns: Sequence[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        else:
            yield route


def route_urls(values: Mapping[str, Sequence[Any]]) -> list[str]:
    """Every GET-able URL of the site, each route's parameters filled with every given value.

    A route whose parameter has no values given is left out; the caller decides which ids
    a role could know. Derived from the URL resolver, so a new route is reached too.
    """
    urls: list[str] = []
    for route in _routes(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES) or route.startswith("^"):
            continue
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        if set(names) & TOKEN_PARAMETERS or any(not values.get(name) for name in names):
            continue
        choices: list[dict[str, Any]] = [{}]
        for name in names:
            choices = [{**choice, name: value} for choice in choices for value in values[name]]
        for choice in choices:
            url = re.sub(r"<(?:\w+:)?(\w+)>", lambda match, c=choice: str(c[match.group(1)]), route)
            urls.append("/" + url)
    return sorted(set(urls))


def pdf_text(pdf: bytes) -> str:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "surface.pdf"
        path.write_bytes(pdf)
        return subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
        ).stdout


def readable(response: Any) -> str:
    """What a response says, as text: a page's visible text, a JSON body, a PDF's text."""
    content_type = response.get("Content-Type", "")
    body = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    if content_type.startswith("application/pdf"):
        return pdf_text(body)
    if content_type.startswith("application/json"):
        return json.dumps(json.loads(body), ensure_ascii=False)
    if content_type.startswith("text/html"):
        return visible_text(body.decode())
    return body.decode(errors="replace")


def _followed(response: Any) -> list[str]:
    """The site's URLs a response leads to: a page's links (with the page of a list they ask
    for, no other query), and an API list's next page."""
    content_type = response.get("Content-Type", "")
    if content_type.startswith("text/html"):
        links = []
        for link in re.findall(r'href="(/[^"#]*)"', response.content.decode()):
            path, _, query = html.unescape(link).partition("?")
            links.append(f"{path}?{query}" if re.fullmatch(r"page=\d+", query) else path)
        return links
    if content_type.startswith("application/json"):
        body = json.loads(response.content)
        following = body.get("next") if isinstance(body, dict) else None
        if isinstance(following, str):
            parts = urlsplit(following)
            return [f"{parts.path}?{parts.query}" if parts.query else parts.path]
    return []


def crawl(client: Client, urls: Sequence[str]) -> dict[str, tuple[int, str]]:
    """GET every URL (and the pages they link to on the site, every page of a paged list
    included); {url: (status, readable text)}."""
    seen: dict[str, tuple[int, str]] = {}
    queue = list(urls)
    while queue:
        url = queue.pop(0)
        if url in seen or url.startswith(tuple("/" + prefix for prefix in SKIPPED_PREFIXES)) or "/static/" in url:
            continue
        response = client.get(url)
        text = readable(response) if response.status_code < 300 else response.content.decode(errors="replace")
        seen[url] = (response.status_code, text)
        if response.status_code == 200:
            queue.extend(link for link in _followed(response) if link not in seen)
    return seen
