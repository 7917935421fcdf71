"""One template for the report's web page and its PDF; WeasyPrint renders the PDF.

The PDF renderer fetches nothing from outside: its URL fetcher serves only the project's
own static files and refuses everything else, so text in a comment such as
``<img src=http://…>`` — escaped by the template anyway — could never make the worker
call out, and a report can never depend on (or leak to) another server.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils.translation import get_language, gettext

from reports import charts
from surveys.vocabulary import (
    FIGURE_LABELS,
    KEEP_DOING,
    LEADERSHIP,
    MANAGEMENT,
    OTHERS,
    SELF,
    SIDE_LABELS,
    SIDES,
    START_DOING,
)

logger = logging.getLogger(__name__)
# WeasyPrint narrates seven progress steps per document at INFO: a thousand reports would
# bury the worker's log in them.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

# The base URL the PDF's HTML is resolved against: never a real host, so relative links
# can only ever point at our own static files.
PDF_BASE_URL = "http://report.invalid/"
REPORT_CSS = "reports/report.css"
POSITIONS_CSS = "reports/report-positions.css"
PDF_LAYOUT = "reports/layout_pdf.html"
# The PDF's page rules (size, margins, running head, page numbers), a template for its translated words.
PDF_PAGE_CSS = "reports/report_page.css"
WEB_LAYOUT = "reports/layout_web.html"


class RefusedFetch(ValueError):
    """A resource the PDF renderer is not allowed to load."""


def static_file_for(url: str) -> Path | None:
    """The project static file a PDF URL names, or None for anything else."""
    parts = urlsplit(url)
    if f"{parts.scheme}://{parts.netloc}/" != PDF_BASE_URL:
        return None
    static_prefix = "/" + settings.STATIC_URL.strip("/") + "/"
    if not parts.path.startswith(static_prefix):
        return None
    relative = unquote(parts.path[len(static_prefix) :])
    if not relative or ".." in Path(relative).parts:
        return None
    found = finders.find(relative)
    return Path(found) if isinstance(found, str) else None


def pdf_url_fetcher_class() -> type[Any]:
    # WeasyPrint is imported lazily: loading Pango costs time every web process would
    # otherwise pay at start-up for pages that never render a PDF.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyURLFetcher(URLFetcher):
        def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
            path = static_file_for(url)
            if path is None:
                logger.warning("pdf renderer refused to fetch %s", url[:200])
                raise RefusedFetch(f"refused: {url[:200]}")
            mime = "text/css" if path.suffix == ".css" else "application/octet-stream"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})

    return StaticOnlyURLFetcher


@functools.cache
def _font_config() -> Any:
    """One FontConfiguration per process: building it scans the system fonts every time."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def _static_text(name: str) -> str:
    path = finders.find(name)
    if not isinstance(path, str):
        raise FileNotFoundError(name)
    return Path(path).read_text(encoding="utf-8")


@functools.cache
def report_css() -> str:
    """The report's stylesheet and the places its charts use, as the PDF reads them."""
    return _static_text(REPORT_CSS) + _static_text(POSITIONS_CSS)


@functools.cache
def _stylesheets(language: str) -> tuple[Any, ...]:
    """The report's CSS and the PDF's page rules, parsed once per process (and language:
    the page rules hold words).

    WeasyPrint would otherwise parse the whole stylesheet again for every report; a
    cycle's thousand reports in one worker share one parsed copy.
    """
    from weasyprint import CSS

    return (
        # Resolved as the web page resolves it: a url() in the stylesheet can only name our static files.
        CSS(
            string=report_css(),
            base_url=f"{PDF_BASE_URL}{settings.STATIC_URL.strip('/')}/reports/",
            font_config=_font_config(),
        ),
        CSS(string=render_to_string(PDF_PAGE_CSS), font_config=_font_config()),
    )


def renderer_warm() -> None:
    """Load the PDF renderer, its fonts and the parsed stylesheets now rather than in the first
    report (a worker process calls this when it starts)."""
    from weasyprint import HTML

    stylesheets = list(_stylesheets(settings.LANGUAGE_CODE))
    HTML(string="<p>Balance 360</p>", base_url=PDF_BASE_URL, url_fetcher=pdf_url_fetcher_class()()).write_pdf(
        stylesheets=stylesheets, font_config=_font_config()
    )


def _points(indices: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": gettext(FIGURE_LABELS[label]),
            "management": indices[label]["management"]["score"],
            "leadership": indices[label]["leadership"]["score"],
            "kind": kind,
        }
        for label, kind in ((SELF, "self"), (OTHERS, "others"))
        if label in indices
    ]


def _earlier_point(trend: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The earlier cycle's Others point, as the trend repeats it (both indices needed)."""
    indices = (trend or {}).get("indices") or {}
    if MANAGEMENT not in indices or LEADERSHIP not in indices:
        return None
    return {
        "label": (trend or {}).get("cycle") or gettext("Earlier"),
        "management": indices[MANAGEMENT]["before"],
        "leadership": indices[LEADERSHIP]["before"],
    }


def report_context(*, data: Mapping[str, Any], with_charts: bool = True) -> dict[str, Any]:
    """Everything the report template shows, derived only from the stored report JSON.

    ``with_charts=False`` leaves every chart out — only the benchmark asks for that, to
    measure what the charts cost.
    """
    cut = float(data.get("quadrant_cut", settings.BALANCE_QUADRANT_CUT))
    subject_name = (data.get("subject") or {}).get("name", "")
    cycle_name = (data.get("cycle") or {}).get("name", "")
    indices = data.get("indices") or {}
    points = _points(indices)
    comments = {block["question"]: block for block in data.get("comments") or []}
    sides = []
    for side in SIDES:
        dimensions = []
        for dimension in data.get("dimensions", []):
            if dimension.get("side") != side:
                continue
            bars = list(dimension.get("groups", []))
            if dimension.get("others"):
                bars.append({"group": OTHERS, "label": gettext(FIGURE_LABELS[OTHERS]), **dimension["others"]})
            chart = None
            if bars and with_charts:
                chart = charts.bars_chart(
                    bars=bars, title=gettext("%(dimension)s: scores by rater group") % {"dimension": dimension["name"]}
                )
            dimensions.append({**dimension, "bars": bars, "chart": chart})
        sides.append(
            {
                "key": side,
                "label": gettext(SIDE_LABELS[side]),
                "dimensions": dimensions,
                "index": {label: (indices.get(label) or {}).get(side) for label in (SELF, OTHERS)},
                "comments": comments.get(side),
            }
        )
    gaps = [
        {
            "name": dimension["name"],
            "value": dimension["gap"]["value"],
            "flag": dimension["gap"]["flag"],
            "label": dimension["gap"]["label"],
        }
        for dimension in data.get("dimensions", [])
        if dimension.get("gap")
    ]
    index_rows = [
        {
            "label": gettext(SIDE_LABELS[side]),
            "self": indices.get(SELF, {}).get(side),
            "others": indices.get(OTHERS, {}).get(side),
        }
        for side in SIDES
    ]
    plane = None
    if points and with_charts:
        plane = charts.plane_chart(
            points=points,
            cut=cut,
            title=gettext("Management and leadership indices: self and others"),
            earlier=_earlier_point(data.get("trend")),
        )
    pairs_shown = [pair for pair in data.get("pairs") or [] if pair.get("gap") is not None]
    return {
        "report": data,
        "reading": data.get("reading") or {},
        "index_rows": index_rows,
        "subject_name": subject_name,
        "cycle_name": cycle_name,
        "running_head": f"{subject_name} · {cycle_name}",
        "plane": plane,
        "sides": sides,
        "open_comments": [comments[question] for question in (KEEP_DOING, START_DOING) if question in comments],
        "gap_chart": charts.gap_chart(gaps=gaps, title=gettext("Self minus others per dimension"))
        if gaps and with_charts
        else None,
        "pairs_chart": charts.pairs_chart(
            pairs=data.get("pairs") or [], title=gettext("Kotter's pairs: management beside leadership (Others)")
        )
        if pairs_shown and with_charts
        else None,
    }


def report_html(
    *, data: Mapping[str, Any], for_pdf: bool, extra: Mapping[str, Any] | None = None, with_charts: bool = True
) -> str:
    context = report_context(data=data, with_charts=with_charts)
    context["layout"] = PDF_LAYOUT if for_pdf else WEB_LAYOUT
    context["for_pdf"] = for_pdf
    context.update(extra or {})
    return render_to_string("reports/report.html", context)


def report_pdf_render(*, data: Mapping[str, Any], with_charts: bool = True) -> bytes:
    from weasyprint import HTML

    html = report_html(data=data, for_pdf=True, with_charts=with_charts)
    document = HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=pdf_url_fetcher_class()())
    pdf = document.write_pdf(
        stylesheets=list(_stylesheets(get_language() or settings.LANGUAGE_CODE)), font_config=_font_config()
    )
    if not isinstance(pdf, bytes):
        raise TypeError("WeasyPrint returned no PDF bytes")
    return pdf


def pdf_checksum(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()
