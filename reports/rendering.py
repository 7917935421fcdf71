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

from reports import charts
from surveys.vocabulary import FIGURE_LABELS, OTHERS, SELF, SIDES

logger = logging.getLogger(__name__)
# WeasyPrint narrates seven progress steps per document at INFO: a thousand reports would
# bury the worker's log in them.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

# The base URL the PDF's HTML is resolved against: never a real host, so relative links
# can only ever point at our own static files.
PDF_BASE_URL = "http://report.invalid/"
REPORT_CSS = "reports/report.css"
PDF_LAYOUT = "reports/layout_pdf.html"
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


@functools.cache
def report_css() -> str:
    path = finders.find(REPORT_CSS)
    if not isinstance(path, str):
        raise FileNotFoundError(REPORT_CSS)
    return Path(path).read_text(encoding="utf-8")


def report_context(*, data: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the report template shows, derived only from the stored report JSON."""
    cut = float(data.get("quadrant_cut", settings.BALANCE_QUADRANT_CUT))
    subject_name = (data.get("subject") or {}).get("name", "")
    cycle_name = (data.get("cycle") or {}).get("name", "")
    indices = data.get("indices") or {}
    points = []
    for label, shape in ((SELF, "circle"), (OTHERS, "square")):
        if label in indices:
            points.append(
                {
                    "label": FIGURE_LABELS[label],
                    "management": indices[label]["management"]["score"],
                    "leadership": indices[label]["leadership"]["score"],
                    "shape": shape,
                }
            )
    dimensions = []
    for dimension in data.get("dimensions", []):
        bars = list(dimension.get("groups", []))
        if dimension.get("others"):
            bars.append({"group": OTHERS, "label": FIGURE_LABELS[OTHERS], **dimension["others"]})
        dimensions.append(
            {
                **dimension,
                "chart": charts.bars_svg(
                    bars=bars, title=f"{dimension['name']}: scores by rater group", chart_id=dimension["key"]
                )
                if bars
                else None,
            }
        )
    gaps = [
        {"name": dimension["name"], "value": dimension["gap"]["value"], "label": dimension["gap"]["label"]}
        for dimension in data.get("dimensions", [])
        if dimension.get("gap")
    ]
    index_rows = [
        {
            "label": side.title(),
            "self": indices.get(SELF, {}).get(side),
            "others": indices.get(OTHERS, {}).get(side),
        }
        for side in SIDES
    ]
    return {
        "report": data,
        "index_rows": index_rows,
        "subject_name": subject_name,
        "cycle_name": cycle_name,
        "running_head": f"{subject_name} · {cycle_name}",
        "plane": charts.plane_svg(points=points, cut=cut, title="Management and leadership indices: self and others")
        if points
        else None,
        "dimensions": dimensions,
        "gap_chart": charts.gap_svg(gaps=gaps, title="Self minus others per dimension") if gaps else None,
    }


def report_html(*, data: Mapping[str, Any], for_pdf: bool, extra: Mapping[str, Any] | None = None) -> str:
    context = report_context(data=data)
    context["layout"] = PDF_LAYOUT if for_pdf else WEB_LAYOUT
    context["for_pdf"] = for_pdf
    if for_pdf:
        context["report_css"] = report_css()
    context.update(extra or {})
    return render_to_string("reports/report.html", context)


def report_pdf_render(*, data: Mapping[str, Any]) -> bytes:
    from weasyprint import HTML

    html = report_html(data=data, for_pdf=True)
    document = HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=pdf_url_fetcher_class()())
    pdf = document.write_pdf(font_config=_font_config())
    if not isinstance(pdf, bytes):
        raise TypeError("WeasyPrint returned no PDF bytes")
    return pdf


def pdf_checksum(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()
