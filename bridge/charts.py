"""Bar charts as inline SVG, drawn on the server: the dashboard needs no script and no CDN.

Every figure is also written as text inside the chart (and in a <title> for hover), so a chart
is readable without a mouse, by a screen reader, and by a test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    #: The value as people read it ("USD 1,500.00", "7"); the bar's length uses `value`.
    display: str
    #: Extra text after the value, e.g. a conversion rate.
    note: str = ""


def _heading(title: str, width: int, height: int) -> list[str]:
    """The <svg> element's opening tag, labelled for screen readers, and the visible title."""
    return [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" aria-label="{escape(title)}" {_FONT}>'
        ),
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]


def _scaled(value: int, largest: int, length: int) -> int:
    """Integer bar length: zero stays zero, anything above zero is at least one pixel."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, value * length // largest)


def horizontal_bars(
    title: str, bars: Sequence[Bar], *, width: int = 640, label_width: int = 170
) -> str:
    """One row per bar, longest = the largest value (the funnel)."""
    row, top = 26, 28
    bar_space = width - label_width - 150
    largest = max((b.value for b in bars), default=0)
    height = top + row * len(bars) + 8
    parts = [
        *_heading(title, width, height),
    ]
    for index, bar in enumerate(bars):
        y = top + index * row
        length = _scaled(bar.value, largest, bar_space)
        text = f"{bar.display} {bar.note}".strip()
        parts.append(
            f"<g><title>{escape(bar.label)}: {escape(text)}</title>"
            f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">{escape(bar.label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="16" fill="#3b6ea5"/>'
            f'<text x="{label_width + length + 6}" y="{y + 15}">{escape(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def vertical_bars(title: str, bars: Sequence[Bar], *, height: int = 220, column: int = 90) -> str:
    """One column per bar, left to right (money by month)."""
    top, bottom = 28, 40
    plot = height - top - bottom
    largest = max((b.value for b in bars), default=0)
    width = max(320, column * len(bars) + 20)
    parts = [
        *_heading(title, width, height),
        f'<line x1="10" y1="{top + plot}" x2="{width - 10}" y2="{top + plot}" stroke="#999"/>',
    ]
    if not bars:
        parts.append(f'<text x="10" y="{top + plot // 2}">nothing yet</text>')
    for index, bar in enumerate(bars):
        x = 10 + index * column
        length = _scaled(bar.value, largest, plot - 18)
        centre = x + column // 2
        parts.append(
            f"<g><title>{escape(bar.label)}: {escape(bar.display)}</title>"
            f'<rect x="{x + 12}" y="{top + plot - length}" width="{column - 24}" height="{length}" fill="#2e8b57"/>'
            f'<text x="{centre}" y="{top + plot - length - 4}" text-anchor="middle">{escape(bar.display)}</text>'
            f'<text x="{centre}" y="{top + plot + 16}" text-anchor="middle">{escape(bar.label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
