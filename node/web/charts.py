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

# The chart is drawn for the narrowest screen and stretched to the width it is given: each row's label sits on
# its own line(s) above its bar, and the bars are laid out in percentages of the chart's width, so the text keeps
# its size in px on a 390 px phone and on a wide screen alike (a viewBox scaled the whole drawing down: its labels
# were 6 px high on a phone).
_LINE_H = 18      # one line of label
_BAR_H = 20
_GAP = 12         # between one row's bar and the next row's label
_LABEL_CHARS = 40  # a label line stays within a 390 px phone's column at 14 px
_LABEL_LINES = 2
_MIN_TEXT_SHARE = 10  # a narrower segment (in % of the bar) shows its figure only in the tooltip and the table


def _label_lines(label: str) -> list[str]:
    """The label cut at spaces into at most two lines of about 40 characters; "…" ends it where it is cut short."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= _LABEL_CHARS:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > _LABEL_LINES:
        lines = lines[:_LABEL_LINES]
        lines[-1] = lines[-1][: _LABEL_CHARS - 1] + "…"
    return [line if len(line) <= _LABEL_CHARS else line[: _LABEL_CHARS - 1] + "…" for line in lines] or [""]


def _label(label: str, y: int) -> tuple[str, int]:
    """The row's label as SVG text from `y` down, and the y where its bar starts."""
    lines = _label_lines(label)
    spans = " ".join(f'<tspan x="0" y="{y + (i + 1) * _LINE_H - 4}">{escape(line)}</tspan>'
                    for i, line in enumerate(lines))
    return (f'<text class="chart-label">{spans}<title>{escape(label)}</title></text>', y + len(lines) * _LINE_H)


def _svg_open(height: int, title: str) -> str:
    return (f'<svg class="chart" width="100%" height="{height}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg">')


def group_bars_svg(rows: Sequence[tuple[str, Mapping[str, int] | None]], *, lang: str, title: str) -> Markup:
    """One 100 % stacked bar per row (an exercise, or a school): share of the assessed pupils in each group.

    The shares are `preau.crdt.statistics.percents`, the one definition every
    table and export uses (absent pupils are outside the base, so they are not
    drawn: the table next to the chart gives their number). A row's counts of
    None: some of them are hidden (small cells), and the row says so instead of a bar.
    """
    parts = []
    y = 0
    for label, counts in rows:
        text, top = _label(label, y)
        parts.append(text)
        y = top + _BAR_H + _GAP
        if counts is None:  # a row with a hidden part (at an académie): its shares are not known
            parts.append(f'<text class="chart-empty" x="0" y="{top + _BAR_H - 5}">'
                         f'{escape(i18n.translate(lang, "chart.masked"))}</text>')
            continue
        clean = {c: max(0, int(counts.get(c, 0))) for c in COLUMNS}
        shares = percents(clean)
        total = sum(clean[g] for g in SCORED_GROUPS)
        if total == 0:
            parts.append(f'<text class="chart-empty" x="0" y="{top + _BAR_H - 5}">'
                         f'{escape(i18n.translate(lang, "chart.no_data"))}</text>')
            continue
        x = 0.0
        for group in SCORED_GROUPS:
            count = clean[group]
            if count == 0:
                continue
            w = 100 * count / total
            share = shares[group]
            name = i18n.translate(lang, f"group.{group}")
            parts.append(f'<rect class="g-{group}" x="{x:.2f}%" y="{top}" width="{w:.2f}%" height="{_BAR_H}">'
                         f'<title>{escape(name)} : {count} ({share} %)</title></rect>')
            if w >= _MIN_TEXT_SHARE:
                parts.append(f'<text class="chart-value" x="{x + w / 2:.2f}%" y="{top + _BAR_H - 6}" '
                             f'text-anchor="middle">{share} %</text>')
            x += w
    return Markup(_svg_open(max(y - _GAP, 0) + 2, title) + "".join(parts) + "</svg>")


_AXIS_H = 22
_TICKS = (0, 25, 50, 75, 100)


def spread_svg(rows: Sequence[tuple[str, object]], *, lang: str, title: str) -> Markup:
    """One box per row (an exercise): the share of pupils above threshold 2 across schools.

    Whisker from the lowest to the highest school, box from the first to the
    third quartile, a thick mark at the median. `rows` hold (label, Spread or None).
    """

    def x(rate: float) -> str:
        return f"{100 * max(0.0, min(1.0, rate)):.2f}%"

    parts = []
    y = 0
    bars: list[str] = []
    grid: list[str] = []
    for label, spread in rows:
        text, top = _label(label, y)
        parts.append(text)
        y = top + _BAR_H + _GAP
        mid = top + _BAR_H / 2
        grid.extend(f'<line class="chart-grid" x1="{tick}%" y1="{top - 2}" x2="{tick}%" y2="{top + _BAR_H + 2}"/>'
                    for tick in _TICKS)  # under the bar only: a line through the label would cross its words
        if spread is None:
            parts.append(f'<text class="chart-empty" x="0" y="{top + _BAR_H - 5}">'
                         f'{escape(i18n.translate(lang, "chart.no_data"))}</text>')
            continue
        lo, q1, med, q3, hi = (getattr(spread, k) for k in ("min", "q1", "median", "q3", "max"))
        tip = escape(i18n.translate(lang, "chart.spread_tip", min=percent(lo), median=percent(med),
                                    max=percent(hi)))
        box = f"{100 * max(0.005, min(1.0, q3) - max(0.0, q1)):.2f}%"  # a box of no width is still seen
        bars.append(f'<g><title>{tip}</title>'
                    f'<line class="chart-whisker" x1="{x(lo)}" y1="{mid}" x2="{x(hi)}" y2="{mid}"/>'
                    f'<rect class="g-seuil2" x="{x(q1)}" y="{top + 2}" width="{box}" height="{_BAR_H - 4}"/>'
                    f'<line class="chart-median" x1="{x(med)}" y1="{top}" x2="{x(med)}" y2="{top + _BAR_H}"/></g>')
    height = max(y - _GAP, 0) + _AXIS_H + 4
    for tick in _TICKS:
        anchor = "start" if tick == 0 else "end" if tick == 100 else "middle"
        grid.append(f'<text class="chart-value" x="{tick}%" y="{height - 6}" text-anchor="{anchor}">{tick} %</text>')
    return Markup(_svg_open(height, title) + "".join(grid) + "".join(parts) + "".join(bars) + "</svg>")
