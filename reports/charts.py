"""Inline SVG charts drawn from a report's stored (already filtered) JSON.

Readable in grayscale: every series differs by shape or fill pattern *and* carries a text
label with its value and rater count, so a black-and-white print loses nothing. All text
that comes from data is escaped; the charts load nothing from anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

from surveys.vocabulary import COMBINED, DIRECT_REPORT, MANAGER, OTHERS, OUTSIDE, PEER, SELF

SCALE_MIN = 1.0
SCALE_MAX = 5.0
FONT = "DejaVu Sans"

# Gray levels per group (distinct in grayscale); Others, the figure the indices and the
# quadrant come from, is hatched.
GROUP_FILLS: dict[str, str] = {
    SELF: "#ffffff",
    MANAGER: "#bdbdbd",
    PEER: "#8c8c8c",
    DIRECT_REPORT: "#5e5e5e",
    OUTSIDE: "#a6a6a6",
    COMBINED: "#767676",
}


def _hatch_defs(pattern_id: str) -> str:
    return (
        f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e0e0e0"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#222" stroke-width="2"/></pattern></defs>'
    )


def _number(value: float) -> str:
    # Scores are stored with one decimal and shown with exactly one, everywhere.
    return f"{value:.1f}"


def _svg(width: int, height: int, title: str, body: str, *, defs: str = "") -> SafeString:
    return mark_safe(  # noqa: S308 - every piece of data in ``body`` went through escape()/format_html
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" font-family="{FONT}" font-size="11">'
        f"<title>{escape(title)}</title>{defs}{body}</svg>"
    )


def plane_svg(*, points: Sequence[Mapping[str, Any]], cut: float, title: str) -> SafeString:
    """The management × leadership plane with its four named quadrants and the given points.

    Each point: {"label", "management", "leadership", "shape": "square" | "circle"}.
    """
    size, margin = 360, 46
    span = size - 2 * margin

    def x(value: float) -> float:
        return margin + (min(max(value, SCALE_MIN), SCALE_MAX) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * span

    def y(value: float) -> float:
        return size - margin - (min(max(value, SCALE_MIN), SCALE_MAX) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * span

    parts: list[str] = [
        f'<rect x="{margin}" y="{margin}" width="{span}" height="{span}" fill="#fafafa" stroke="#333"/>',
        f'<line x1="{x(cut)}" y1="{margin}" x2="{x(cut)}" y2="{size - margin}" stroke="#333" stroke-dasharray="5 3"/>',
        f'<line x1="{margin}" y1="{y(cut)}" x2="{size - margin}" y2="{y(cut)}" stroke="#333" stroke-dasharray="5 3"/>',
    ]
    quadrant_names = (
        (x(SCALE_MIN) + 6, y(SCALE_MAX) + 14, "start", "Strong leadership only", "(chaos risk)"),
        (x(SCALE_MAX) - 6, y(SCALE_MAX) + 14, "end", "Strong on both", ""),
        (x(SCALE_MIN) + 6, y(SCALE_MIN) - 18, "start", "Developing on both", ""),
        (x(SCALE_MAX) - 6, y(SCALE_MIN) - 18, "end", "Strong management only", "(bureaucracy risk)"),
    )
    for qx, qy, anchor, line1, line2 in quadrant_names:
        parts.append(
            f'<text x="{qx:.1f}" y="{qy:.1f}" text-anchor="{anchor}" font-size="9" fill="#333">'
            f'{line1}<tspan x="{qx:.1f}" dy="12">{line2}</tspan></text>'
        )
    for tick in range(1, 6):
        parts.append(f'<text x="{x(tick):.1f}" y="{size - margin + 16}" text-anchor="middle">{tick}</text>')
        parts.append(f'<text x="{margin - 10}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    parts.append(
        f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle" font-weight="bold">Management index →</text>'
    )
    parts.append(
        f'<text transform="translate(14 {size / 2}) rotate(-90)" text-anchor="middle" '
        'font-weight="bold">Leadership index →</text>'
    )
    for point in points:
        px, py = x(float(point["management"])), y(float(point["leadership"]))
        if point.get("shape") == "circle":
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#fff" stroke="#000" stroke-width="2"/>')
        else:
            parts.append(f'<rect x="{px - 6:.1f}" y="{py - 6:.1f}" width="12" height="12" fill="#000" stroke="#000"/>')
        # Self's label sits above-right of its circle and Others' below-left of its square:
        # the two points are often close, and their labels must not print over each other.
        above = point.get("shape") == "circle"
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="10" font-weight="bold" text-anchor="{}">{}</text>',
                f"{px + 9:.1f}" if above else f"{px - 9:.1f}",
                f"{py - 7:.1f}" if above else f"{py + 17:.1f}",
                "start" if above else "end",
                point["label"],
            )
        )
    return _svg(size, size, title, "".join(parts))


def bars_svg(*, bars: Sequence[Mapping[str, Any]], title: str, chart_id: str) -> SafeString:
    """Horizontal bars on the 1–5 scale, one per group: {"group", "label", "score", "n"}.

    ``chart_id`` keeps the hatch pattern's id unique among the charts of one page.
    """
    hatch = f"hatch-{slugify(chart_id)}"
    label_width, bar_width, row, width = 150, 220, 22, 470
    height = max(row * len(bars) + 26, 40)
    parts: list[str] = []

    def x(value: float) -> float:
        return label_width + (min(max(value, SCALE_MIN), SCALE_MAX) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN) * bar_width

    for tick in range(1, 6):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="0" x2="{x(tick):.1f}" y2="{height - 16}" stroke="#ccc"/>'
            f'<text x="{x(tick):.1f}" y="{height - 4}" text-anchor="middle" font-size="9">{tick}</text>'
        )
    for index, bar in enumerate(bars):
        top = index * row + 4
        score = float(bar["score"])
        fill = f"url(#{hatch})" if bar["group"] == OTHERS else GROUP_FILLS.get(str(bar["group"]), "#999999")
        parts.append(
            format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', label_width - 6, top + 13, str(bar["label"]))
        )
        parts.append(
            f'<rect x="{label_width}" y="{top}" width="{x(score) - label_width:.1f}" height="16" '
            f'fill="{fill}" stroke="#000" stroke-width="1"/>'
        )
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="10">{} (n={})</text>',
                f"{x(score) + 5:.1f}",
                top + 12,
                _number(score),
                bar["n"],
            )
        )
    return _svg(width, height, title, "".join(parts), defs=_hatch_defs(hatch))


def gap_svg(*, gaps: Sequence[Mapping[str, Any]], title: str) -> SafeString:
    """Self − Others per dimension as bars around zero: {"name", "value", "label"}."""
    label_width, half, row, width = 190, 110, 22, 520
    centre = label_width + half
    height = max(row * len(gaps) + 30, 40)
    limit = 2.0

    def length(value: float) -> float:
        return max(min(value, limit), -limit) / limit * half

    parts: list[str] = [
        f'<line x1="{centre}" y1="0" x2="{centre}" y2="{height - 18}" stroke="#000"/>',
        f'<line x1="{centre - length(0.5):.1f}" y1="0" x2="{centre - length(0.5):.1f}" y2="{height - 18}" '
        'stroke="#999" stroke-dasharray="3 3"/>',
        f'<line x1="{centre + length(0.5):.1f}" y1="0" x2="{centre + length(0.5):.1f}" y2="{height - 18}" '
        'stroke="#999" stroke-dasharray="3 3"/>',
        f'<text x="{centre - half}" y="{height - 4}" font-size="9">self lower</text>',
        f'<text x="{centre + half}" y="{height - 4}" font-size="9" text-anchor="end">self higher</text>',
    ]
    for index, gap in enumerate(gaps):
        top = index * row + 4
        value = float(gap["value"])
        bar = length(value)
        parts.append(
            format_html('<text x="{}" y="{}" text-anchor="end">{}</text>', label_width - 6, top + 13, str(gap["name"]))
        )
        fill = "url(#hatch-gap)" if gap.get("label") else "#9e9e9e"
        parts.append(
            f'<rect x="{min(centre, centre + bar):.1f}" y="{top}" width="{abs(bar):.1f}" height="16" '
            f'fill="{fill}" stroke="#000"/>'
        )
        text = f"{value:+.1f}" + (f" {gap['label']}" if gap.get("label") else "")
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="10">{}</text>',
                f"{centre + half + 6:.1f}",
                top + 12,
                text,
            )
        )
    return _svg(width, height, title, "".join(parts), defs=_hatch_defs("hatch-gap"))
