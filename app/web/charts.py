"""Bar charts as SVG, drawn on the server: no JavaScript, works offline, prints well."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

# Drawn narrow with large type: the same SVG is scaled to the page, and at 390 px (a
# phone) 420 units shrink to ~360 px, so 15-unit labels still read at ~13 px.
WIDTH, HEIGHT = 420, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 14, 36
FONT = 15
CHAR_WIDTH = FONT * 0.62  # an average label character, to space labels apart
BAR_COLOUR = "#1f5fa8"  # 6.5:1 on white
AXIS_COLOUR = "#444"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, float]],
    unit: str = "",
    prefix: str = "",
    label_every: int | None = None,
    empty_text: str = "No data in this period yet",
) -> Markup:
    """A labelled bar chart; its numbers are also in the CSV and in <desc> for screen readers."""
    top_value = _nice_top(max((v for _, v in bars), default=0))
    if not any(v for _, v in bars):
        return _empty_chart(chart_id, title, empty_text)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    bar_w = max(slot * 0.7, 1)
    if label_every is None:  # as many labels as fit without touching
        widest = max(len(name) for name, _ in bars) * CHAR_WIDTH + 8
        label_every = max(int(-(-widest // slot)), 1)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">'
        + escape("; ".join(f"{name}: {prefix}{_fmt(v)}{unit}" for name, v in bars) or "no data")
        + "</desc>",
    ]
    # A half-way line only where it is a whole number: "2.5" missed calls means nothing.
    for fraction in (0, 0.5, 1) if (top_value / 2).is_integer() else (0, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 5:.1f}" text-anchor="end" font-size="{FONT}" '
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
                f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - BOTTOM + 20}" text-anchor="middle" '
                f'font-size="{FONT}" fill="{AXIS_COLOUR}">{escape(name)}</text>'
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
        f'<text x="{WIDTH / 2}" y="35" text-anchor="middle" font-size="14" fill="{AXIS_COLOUR}">'
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
