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
    prefix: str = "",
    label_every: int = 1,
    empty_text: str = "No data in this period yet",
) -> Markup:
    """A labelled bar chart; its numbers are also in the CSV and in <desc> for screen readers."""
    top_value = _nice_top(max((v for _, v in bars), default=0))
    if not any(v for _, v in bars):
        return _empty_chart(chart_id, title, empty_text)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">'
        + escape("; ".join(f"{name}: {prefix}{_fmt(v)}{unit}" for name, v in bars) or "no data")
        + "</desc>",
    ]
    # A half-way line at 0.5 of a count of 1 would read as half a call.
    for fraction in (0, 0.5, 1) if top_value >= 2 else (0, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{AXIS_COLOUR}">{escape(prefix + _fmt(top_value * fraction) + unit)}</text>'
        )
    for index, (name, value) in enumerate(bars):
        height = plot_h * (value / top_value)
        x = LEFT + index * slot + (slot - bar_w) / 2
        y = TOP + plot_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{height:.1f}" '
            f'fill="{BAR_COLOUR}"><title>{escape(name)}: {escape(prefix + _fmt(value) + unit)}'
            "</title></rect>"
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
                f'font-size="12" fill="{AXIS_COLOUR}">{escape(name)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _empty_chart(chart_id: str, title: str, text: str) -> Markup:
    """A short placeholder: an empty axis would suggest a scale that means nothing."""
    return Markup(
        f'<svg id="{escape(chart_id)}" class="chart chart-empty" viewBox="0 0 {WIDTH} 60" '
        f'role="img" aria-label="{escape(title)}: {escape(text)}" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="0" width="{WIDTH}" height="60" fill="#eef1f4" rx="6"/>'
        f'<text x="{WIDTH / 2}" y="36" text-anchor="middle" font-size="16" fill="{AXIS_COLOUR}">'
        f"{escape(text)}</text></svg>"
    )


def _nice_top(value: float) -> float:
    """A round top for the axis (1, 2, 5 x 10^n) so gridlines read as whole numbers."""
    if value <= 0:
        return 1
    scale = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return float(step * scale)
    return float(10 * scale)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
