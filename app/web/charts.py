"""Bar charts as SVG, drawn on the server: no JavaScript, works offline, prints well."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 44
BAR_COLOUR = "#1f5fa8"  # 6.5:1 on white
AXIS_COLOUR = "#444"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    unit: str = "",
    label_every: int = 1,
) -> Markup:
    """A labelled bar chart; its numbers are also in the CSV and in <desc> for screen readers."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = max((v for _, v in bars), default=0) or 1
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">'
        + escape("; ".join(f"{name}: {_fmt(v)}{unit}" for name, v in bars) or "no data")
        + "</desc>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{AXIS_COLOUR}">{escape(_fmt(top_value * fraction))}{escape(unit)}</text>'
        )
    for index, (name, value) in enumerate(bars):
        height = plot_h * (value / top_value)
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = TOP + plot_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
            f'fill="{BAR_COLOUR}"><title>{escape(name)}: {escape(_fmt(value))}{escape(unit)}'
            "</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="12" fill="{AXIS_COLOUR}">{escape(name)}</text>'
            )
    if not bars:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="14" '
            f'fill="{AXIS_COLOUR}">No data in this period yet</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
