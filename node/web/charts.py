"""Bar charts drawn on the server as inline SVG: no chart library, no script, nothing for the CSP to block.

Colours come from CSS classes (`g-besoin`, ...), and every bar carries its
numbers as text, so a chart still reads in grey print or without colour vision.
The same figures must also be given as a table next to the chart (the
accessible version); the SVG is marked as an image with a summary label.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from markupsafe import Markup, escape

from preau.crdt.campaign import SCORED_GROUPS
from preau.crdt.schema import COLUMNS
from preau.crdt.statistics import percent, percents

from preau.node import i18n

_ROW_H = 28
_BAR_H = 18
_LABEL_W = 300
_BAR_W = 400
_MIN_TEXT_W = 28  # narrower segments show their figure only in the tooltip and the table


def group_bars_svg(rows: Sequence[tuple[str, Mapping[str, int]]], *, lang: str, title: str) -> Markup:
    """One 100 % stacked bar per row (an exercise, or a school): share of the assessed pupils in each group.

    The shares are `preau.crdt.statistics.percents`, the one definition every
    table and export uses (absent pupils are outside the base, so they are not
    drawn: the table next to the chart gives their number).
    """
    height = _ROW_H * len(rows) + 8
    width = _LABEL_W + _BAR_W + 10
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, counts) in enumerate(rows):
        y = 4 + index * _ROW_H
        parts.append(f'<text class="chart-label" x="{_LABEL_W - 8}" y="{y + _BAR_H - 4}" text-anchor="end">'
                     f'{escape(_shorten(label))}<title>{escape(label)}</title></text>')
        clean = {c: max(0, int(counts.get(c, 0))) for c in COLUMNS}
        shares = percents(clean)
        total = sum(clean[g] for g in SCORED_GROUPS)
        if total == 0:
            parts.append(f'<text class="chart-empty" x="{_LABEL_W}" y="{y + _BAR_H - 4}">'
                         f'{escape(i18n.translate(lang, "chart.no_data"))}</text>')
            continue
        x = float(_LABEL_W)
        for group in SCORED_GROUPS:
            count = clean[group]
            if count == 0:
                continue
            w = _BAR_W * count / total
            share = shares[group]
            name = i18n.translate(lang, f"group.{group}")
            parts.append(f'<rect class="g-{group}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}">'
                         f'<title>{escape(name)} : {count} ({share} %)</title></rect>')
            if w >= _MIN_TEXT_W:
                parts.append(f'<text class="chart-value" x="{x + w / 2:.1f}" y="{y + _BAR_H - 5}" '
                             f'text-anchor="middle">{share} %</text>')
            x += w
    parts.append("</svg>")
    return Markup("".join(parts))


def _shorten(label: str, limit: int = 36) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


_AXIS_H = 22


def spread_svg(rows: Sequence[tuple[str, object]], *, lang: str, title: str) -> Markup:
    """One box per row (an exercise): the share of pupils above threshold 2 across schools.

    Whisker from the lowest to the highest school, box from the first to the
    third quartile, a thick mark at the median. `rows` hold (label, Spread or None).
    """
    height = _ROW_H * len(rows) + _AXIS_H + 8
    width = _LABEL_W + _BAR_W + 20
    x0 = float(_LABEL_W)

    def x(rate: float) -> float:
        return x0 + _BAR_W * max(0.0, min(1.0, rate))

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0, 25, 50, 75, 100):
        tx = x(tick / 100)
        parts.append(f'<line class="chart-grid" x1="{tx:.1f}" y1="4" x2="{tx:.1f}" y2="{height - _AXIS_H:.0f}"/>'
                     f'<text class="chart-value" x="{tx:.1f}" y="{height - 6}" text-anchor="middle">{tick} %</text>')
    for index, (label, spread) in enumerate(rows):
        y = 4 + index * _ROW_H
        mid = y + _BAR_H / 2
        parts.append(f'<text class="chart-label" x="{_LABEL_W - 8}" y="{y + _BAR_H - 4}" text-anchor="end">'
                     f'{escape(_shorten(label))}<title>{escape(label)}</title></text>')
        if spread is None:
            parts.append(f'<text class="chart-empty" x="{_LABEL_W + 4}" y="{y + _BAR_H - 4}">'
                         f'{escape(i18n.translate(lang, "chart.no_data"))}</text>')
            continue
        lo, q1, med, q3, hi = (getattr(spread, k) for k in ("min", "q1", "median", "q3", "max"))
        tip = escape(i18n.translate(lang, "chart.spread_tip", min=percent(lo), median=percent(med),
                                    max=percent(hi)))
        parts.append(f'<g><title>{tip}</title>'
                     f'<line class="chart-whisker" x1="{x(lo):.1f}" y1="{mid}" x2="{x(hi):.1f}" y2="{mid}"/>'
                     f'<rect class="g-seuil2" x="{x(q1):.1f}" y="{y + 2}" width="{max(1.0, x(q3) - x(q1)):.1f}" '
                     f'height="{_BAR_H - 4}"/>'
                     f'<line class="chart-median" x1="{x(med):.1f}" y1="{y}" x2="{x(med):.1f}" y2="{y + _BAR_H}"/></g>')
    parts.append("</svg>")
    return Markup("".join(parts))
