"""Charts drawn on the server as SVG: no chart library in the browser, nothing for the CSP to allow.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (what a screen reader says)
and presentation attributes only (``fill=``, ``stroke=``, never ``style=``); the page puts the table of
the same numbers next to it, for screen readers and printing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

# Brand purple and a dark teal: both ≥ 4.5:1 on white, and told apart by people with colour-vision
# deficiencies (the legend and the table carry the numbers anyway).
PALETTE = ("#5b2a86", "#00695c", "#8a1111", "#5c4300")
INK, MUTED, GRID = "#1b1b1f", "#4a4a55", "#c9c4d6"


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int | float]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ value (an axis top that reads well)."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, description: str,
              chart_id: str, y_label: str = "", width: int = 640, height: int = 300) -> Markup:
    """Grouped vertical bars: one group per category, one bar per series. The drawing scales to the
    width of its box (``viewBox``); text stays about 16 px on a 10" tablet in portrait."""
    left, right, top, bottom = 52, 12, 44, 36
    groups = max(1, len(categories))
    plot_w, plot_h = width - left - right, height - top - bottom
    group_w = plot_w / groups
    bar_w = min(28.0, group_w * 0.8 / max(1, len(series)))
    y_max = nice_ceiling(max((v for s in series for v in s.values), default=0))
    label_every = max(1, math.ceil(groups * 44 / plot_w))    # thin out category labels that would overlap

    def y(v: float) -> float:
        return top + plot_h - (v / y_max) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="system-ui, sans-serif" font-size="15">',
           f'<title id="{chart_id}-title">{escape(title)}</title>',
           f'<desc id="{chart_id}-desc">{escape(description)}</desc>']
    for i in range(5):                                       # grid lines and the y axis
        v = y_max * i / 4
        gy = y(v)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="{GRID}" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{left - 6}" y="{gy + 5:.1f}" text-anchor="end" fill="{MUTED}">{_num(v)}</text>')
    lx = left
    if y_label:
        out.append(f'<text x="{left}" y="{top - 26}" fill="{MUTED}">{escape(y_label)}</text>')
        lx += 10 * len(y_label) + 24
    for k, s in enumerate(series):                           # legend
        out.append(f'<rect x="{lx}" y="{top - 38}" width="14" height="14" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{lx + 20}" y="{top - 26}" fill="{INK}">{escape(s.label)}</text>')
        lx += 20 + 9 * len(s.label) + 24
    for g, category in enumerate(categories):                # bars
        gx = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for k, s in enumerate(series):
            v = s.values[g] if g < len(s.values) else 0
            by = y(v)
            out.append(f'<rect class="chart__bar" x="{gx + k * bar_w:.1f}" y="{by:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{top + plot_h - by:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                       f'<title>{escape(category)} · {escape(s.label)}: {_num(v)}</title></rect>')
        if g % label_every == 0:
            out.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{height - bottom + 22}" text-anchor="middle" '
                       f'fill="{INK}">{escape(category)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{INK}" '
               f'stroke-width="1"/>')
    out.append("</svg>")
    return Markup("".join(out))


def hourly_chart(hours, *, title: str, description: str, visits_label: str, devices_label: str,
                 chart_id: str = "chart-hourly") -> Markup:
    """Visits and devices started per local hour (``hours``: HourTotals in order)."""
    return bar_chart([f"{h.hour:02d}:00" for h in hours],
                     [Series(visits_label, [h.visits for h in hours]),
                      Series(devices_label, [h.devices for h in hours])],
                     title=title, description=description, chart_id=chart_id)


def hbar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, description: str, chart_id: str,
               width: int = 640, label_width: int = 200) -> Markup:
    """Grouped horizontal bars: one row per category (long labels read on the left, e.g. the stages of a
    cascade), one bar per series. Same accessibility and CSP rules as ``bar_chart``."""
    right, top, bottom, bar_h, gap = 16, 44, 30, 16, 14
    left = label_width
    rows = max(1, len(categories))
    row_h = bar_h * max(1, len(series)) + gap
    height = top + rows * row_h + bottom
    plot_w = width - left - right
    x_max = nice_ceiling(max((v for s in series for v in s.values), default=0))

    def x(v: float) -> float:
        return left + (v / x_max) * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
           f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="system-ui, sans-serif" font-size="15">',
           f'<title id="{chart_id}-title">{escape(title)}</title>',
           f'<desc id="{chart_id}-desc">{escape(description)}</desc>']
    for i in range(5):                                       # grid lines and the x axis
        v = x_max * i / 4
        gx = x(v)
        out.append(f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{top - 4}" y2="{height - bottom}" stroke="{GRID}" '
                   f'stroke-width="1"/>')
        out.append(f'<text x="{gx:.1f}" y="{height - bottom + 20}" text-anchor="middle" fill="{MUTED}">{_num(v)}</text>')
    lx = left
    for k, s in enumerate(series):                           # legend
        out.append(f'<rect x="{lx}" y="{top - 38}" width="14" height="14" fill="{PALETTE[k % len(PALETTE)]}"/>')
        out.append(f'<text x="{lx + 20}" y="{top - 26}" fill="{INK}">{escape(s.label)}</text>')
        lx += 20 + 9 * len(s.label) + 24
    for g, category in enumerate(categories):                # bars
        gy = top + g * row_h
        out.append(f'<text x="{left - 8}" y="{gy + row_h / 2 - gap / 2 + 5:.1f}" text-anchor="end" fill="{INK}">'
                   f'{escape(category)}</text>')
        for k, s in enumerate(series):
            v = s.values[g] if g < len(s.values) else 0
            out.append(f'<rect class="chart__bar" x="{left}" y="{gy + k * bar_h:.1f}" width="{x(v) - left:.1f}" '
                       f'height="{bar_h - 2}" fill="{PALETTE[k % len(PALETTE)]}">'
                       f'<title>{escape(category)} · {escape(s.label)}: {_num(v)}</title></rect>')
    out.append(f'<line x1="{left}" x2="{left}" y1="{top - 4}" y2="{height - bottom}" stroke="{INK}" stroke-width="1"/>')
    out.append("</svg>")
    return Markup("".join(out))
