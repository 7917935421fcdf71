"""The report's charts, drawn from its stored (already filtered) JSON.

Every word and number of a chart is HTML text laid over simple shapes — the plane's
quadrants, cut lines and trend arrow are an SVG of a few rectangles and lines without a
single text node, bars are boxes sized in per cent — because the PDF renderer lays out an
SVG text node far more slowly than a line of HTML, and HTML text wraps, scales and
reads aloud like the rest of the page. The same markup serves the web page and the PDF;
report.css sizes it for each.

Readable in greyscale: each series differs in lightness *and* in shape or label (the
self-rating is a hollow circle, Others a filled square, each bar names its group and
value), so a black-and-white print loses nothing. All text that comes from data is
escaped; the charts load nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from surveys.vocabulary import (
    BUREAUCRACY_RISK,
    CHAOS_RISK,
    COMBINED,
    DEVELOPING_BOTH,
    DIRECT_REPORT,
    MANAGER,
    OTHERS,
    OUTSIDE,
    PEER,
    QUADRANT_LABELS,
    SELF,
    STRONG_BOTH,
)

SCALE_MIN = 1.0
SCALE_MAX = 5.0
# The CSS class of each group's bar (its fill in report.css, light to dark).
GROUP_CLASSES: dict[str, str] = {
    SELF: "self",
    MANAGER: "manager",
    PEER: "peer",
    DIRECT_REPORT: "direct-report",
    OUTSIDE: "outside",
    COMBINED: "combined",
    OTHERS: "others",
}
# Two team points closer than this (per cent of the plane) would print over each other:
# the later one moves aside; the numbered legend says whose is whose either way.
MARKER_SPACING = 3.5
CUT_STROKE = 'stroke="#33475b" stroke-width="0.5" stroke-dasharray="2 1.2"'
TREND_STROKE = 'stroke="#5c6b7a" stroke-width="0.8"'


def _number(value: float) -> str:
    # Scores are stored with one decimal and shown with exactly one, everywhere.
    return f"{value:.1f}"


def _percent(value: float) -> float:
    """A score's place on the 1–5 scale, in per cent of the axis."""
    return (min(max(value, SCALE_MIN), SCALE_MAX) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * 100


def _pos(left: float, top: float) -> str:
    return f"left:{left:.2f}%;top:{top:.2f}%"


def plane_chart(
    *,
    points: Sequence[Mapping[str, Any]],
    cut: float,
    title: str,
    earlier: Mapping[str, Any] | None = None,
    wide: bool = False,
) -> SafeString:
    """The management × leadership plane with its four named quadrants and the given points.

    Each point: {"label", "management", "leadership", "kind": "self" | "others" | "person"},
    a "person" also {"number", "href"}: a numbered marker linked to that person's report,
    named in the legend beside the plane. ``earlier``, {"label", "management",
    "leadership"}, draws an arrow from an earlier cycle's Others point to this one's.
    """
    cut_x, cut_y = _percent(cut), 100 - _percent(cut)
    shapes = [
        f'<rect x="0" y="0" width="{cut_x:.2f}" height="{cut_y:.2f}" fill="#fbe6c8"/>',
        f'<rect x="{cut_x:.2f}" y="0" width="{100 - cut_x:.2f}" height="{cut_y:.2f}" fill="#dcebf6"/>',
        f'<rect x="0" y="{cut_y:.2f}" width="{cut_x:.2f}" height="{100 - cut_y:.2f}" fill="#f2f2f2"/>',
        f'<rect x="{cut_x:.2f}" y="{cut_y:.2f}" width="{100 - cut_x:.2f}" height="{100 - cut_y:.2f}" fill="#e3e7ee"/>',
    ]
    for tick in (2.0, 3.0, 4.0):
        at = _percent(tick)
        shapes.append(f'<line x1="{at:.2f}" y1="0" x2="{at:.2f}" y2="100" stroke="#ffffff" stroke-width="0.6"/>')
        shapes.append(
            f'<line x1="0" y1="{100 - at:.2f}" x2="100" y2="{100 - at:.2f}" stroke="#ffffff" stroke-width="0.6"/>'
        )
    shapes.append(f'<line x1="{cut_x:.2f}" y1="0" x2="{cut_x:.2f}" y2="100" {CUT_STROKE}/>')
    shapes.append(f'<line x1="0" y1="{cut_y:.2f}" x2="100" y2="{cut_y:.2f}" {CUT_STROKE}/>')
    others = next((point for point in points if point.get("kind") == "others"), None)
    if earlier is not None and others is not None:
        x1, y1 = _percent(float(earlier["management"])), 100 - _percent(float(earlier["leadership"]))
        x2, y2 = _percent(float(others["management"])), 100 - _percent(float(others["leadership"]))
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        if length > 0.5:
            # Stop short of the square and draw the head as a triangle: no SVG marker needed.
            ux, uy = (x2 - x1) / length, (y2 - y1) / length
            tip_x, tip_y = x2 - ux * 2.6, y2 - uy * 2.6
            base_x, base_y = tip_x - ux * 3.2, tip_y - uy * 3.2
            shapes.append(f'<line x1="{x1:.2f}" y1="{y1:.2f}" x2="{base_x:.2f}" y2="{base_y:.2f}" {TREND_STROKE}/>')
            shapes.append(
                f'<polygon points="{tip_x:.2f},{tip_y:.2f} {base_x - uy * 1.6:.2f},{base_y + ux * 1.6:.2f} '
                f'{base_x + uy * 1.6:.2f},{base_y - ux * 1.6:.2f}" fill="#5c6b7a"/>'
            )
    svg = mark_safe(  # noqa: S308 - numbers and fixed attributes only
        '<svg class="plane-shapes" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100" '
        f'preserveAspectRatio="none" aria-hidden="true">{"".join(shapes)}</svg>'
    )

    quadrants = format_html_join(
        "",
        '<span class="plane-quadrant {}">{}</span>',
        (
            ("top-left", gettext(QUADRANT_LABELS[CHAOS_RISK])),
            ("top-right", gettext(QUADRANT_LABELS[STRONG_BOTH])),
            ("bottom-left", gettext(QUADRANT_LABELS[DEVELOPING_BOTH])),
            ("bottom-right", gettext(QUADRANT_LABELS[BUREAUCRACY_RISK])),
        ),
    )
    ticks = format_html_join(
        "",
        '<span class="plane-tick x" style="{}">{}</span><span class="plane-tick y" style="{}">{}</span>',
        ((_pos(_percent(t), 100), t, _pos(0, 100 - _percent(t)), t) for t in range(1, 6)),
    )
    marks: list[SafeString] = []
    placed: list[tuple[float, float]] = []
    if earlier is not None and others is not None:
        left, top = _percent(float(earlier["management"])), 100 - _percent(float(earlier["leadership"]))
        marks.append(format_html('<span class="plane-mark earlier" style="{}"></span>', _pos(left, top)))
        marks.append(
            format_html('<span class="plane-label earlier" style="{}">{}</span>', _pos(left, top), earlier["label"])
        )
    for point in points:
        left, top = _percent(float(point["management"])), 100 - _percent(float(point["leadership"]))
        kind = str(point.get("kind", "others"))
        if kind == "person":
            while any(abs(left - x) < MARKER_SPACING and abs(top - y) < MARKER_SPACING for x, y in placed):
                left += MARKER_SPACING
            placed.append((left, top))
            marks.append(
                format_html(
                    '<a class="plane-mark person" style="{}" href="{}" title="{}" aria-label="{}">{}</a>',
                    _pos(left, top),
                    point["href"],
                    point["label"],
                    point["label"],
                    point["number"],
                )
            )
            continue
        marks.append(format_html('<span class="plane-mark {}" style="{}"></span>', kind, _pos(left, top)))
        # Self's label sits above its circle and Others' below its square: the two points
        # are often close, and their labels must not print over each other. Near the top
        # or bottom edge a label turns inward, off the quadrant names in the corners.
        above = top > 86 if kind == "others" else top >= 14
        marks.append(
            format_html(
                '<span class="plane-label {} {} {}" style="{}">{} <span class="plane-value">{} · {}</span></span>',
                kind,
                "left" if left > 62 else "right",
                "above" if above else "below",
                _pos(left, top),
                point["label"],
                _number(float(point["management"])),
                _number(float(point["leadership"])),
            )
        )
    return format_html(
        '<div class="plane-chart{}" role="img" aria-label="{}">'
        '<div class="plane-area">{}{}{}{}</div>'
        '<span class="plane-axis x">{}</span><span class="plane-axis y">{}</span></div>',
        " wide" if wide else "",
        title,
        svg,
        quadrants,
        ticks,
        mark_safe("".join(marks)),  # noqa: S308 - each mark went through format_html
        gettext("Management index →"),
        gettext("Leadership index →"),
    )


def _scale(labelled: bool) -> SafeString:
    if not labelled:
        return mark_safe("")
    return format_html_join(
        "", '<span class="bar-scale-tick" style="left:{}%">{}</span>', ((f"{_percent(t):.2f}", t) for t in range(1, 6))
    )


def bars_chart(*, bars: Sequence[Mapping[str, Any]], title: str) -> SafeString:
    """Horizontal bars on the 1–5 scale, one per group: {"group", "label", "score", "n"}."""
    rows = format_html_join(
        "",
        '<div class="bar-row"><span class="bar-label">{}</span><span class="bar-track">'
        '<span class="bar {}" style="width:{}%"></span></span>'
        '<span class="bar-value">{} <span class="n">(n={})</span></span></div>',
        (
            (
                bar["label"],
                GROUP_CLASSES.get(str(bar["group"]), "peer"),
                f"{_percent(float(bar['score'])):.2f}",
                _number(float(bar["score"])),
                bar["n"],
            )
            for bar in bars
        ),
    )
    return format_html('<div class="bars" role="img" aria-label="{}">{}</div>', title, rows)


def gap_chart(*, gaps: Sequence[Mapping[str, Any]], title: str) -> SafeString:
    """Self − Others per dimension as bars around zero: {"name", "value", "flag", "label"}."""
    limit = 2.0

    def row(gap: Mapping[str, Any]) -> tuple[Any, ...]:
        value = float(gap["value"])
        half = min(abs(value), limit) / limit * 50
        left = 50 if value >= 0 else 50 - half
        flag = str(gap.get("flag") or "none").replace("_", "-")
        text = f"{value:+.1f}"
        return gap["name"], flag, f"left:{left:.2f}%;width:{half:.2f}%", text, gap.get("label") or ""

    rows = format_html_join(
        "",
        '<div class="bar-row"><span class="bar-label">{}</span><span class="bar-track gap-track">'
        '<span class="gap-bar {}" style="{}"></span></span>'
        '<span class="bar-value">{} <strong>{}</strong></span></div>',
        (row(gap) for gap in gaps),
    )
    return format_html(
        '<div class="bars stacked gaps-chart" role="img" aria-label="{}">{}<div class="bar-row bar-axis">'
        '<span class="bar-label"></span><span class="gap-axis"><span>{}</span><span>{}</span></span>'
        '<span class="bar-value"></span></div></div>',
        title,
        rows,
        gettext("← self lower"),
        gettext("self higher →"),
    )


def pairs_chart(*, pairs: Sequence[Mapping[str, Any]], title: str) -> SafeString:
    """Kotter's pairs: each management process's Others bar beside its leadership counterpart's."""
    blocks: list[SafeString] = []
    for pair in pairs:
        rows = []
        for side in ("management", "leadership"):
            shown = pair.get(f"{side}_others")
            if shown:
                rows.append(
                    format_html(
                        '<div class="bar-row"><span class="bar-label">{}</span><span class="bar-track">'
                        '<span class="bar side-{}" style="width:{}%"></span></span>'
                        '<span class="bar-value">{} <span class="n">(n={})</span></span></div>',
                        pair[side]["name"],
                        side,
                        f"{_percent(float(shown['score'])):.2f}",
                        _number(float(shown["score"])),
                        shown["n"],
                    )
                )
            else:
                rows.append(
                    format_html(
                        '<div class="bar-row"><span class="bar-label">{}</span><span class="bar-track"></span>'
                        '<span class="bar-value">—</span></div>',
                        pair[side]["name"],
                    )
                )
        gap = pair.get("gap")
        blocks.append(
            format_html(
                '<div class="pair">{}<p class="pair-gap">{}</p></div>',
                mark_safe("".join(rows)),  # noqa: S308 - each row went through format_html
                gettext("Leadership − management: %(gap)s") % {"gap": f"{float(gap):+.1f}"}
                if gap is not None
                else gettext("No gap: one side has no Others score."),
            )
        )
    return format_html(
        '<div class="bars stacked pairs-chart" role="img" aria-label="{}">{}<div class="bar-row bar-axis">'
        '<span class="bar-label"></span><span class="bar-track">{}</span><span class="bar-value"></span></div></div>',
        title,
        mark_safe("".join(blocks)),  # noqa: S308 - each block went through format_html
        _scale(True),
    )
