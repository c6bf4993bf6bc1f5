"""Charts drawn on the server as inline SVG, for the HQ comparison pages and printed scorecards.

The same markup goes into a browser page and into a WeasyPrint PDF. WeasyPrint runs no script
and :mod:`infra.documents` lets it load nothing from outside, so a chart is one self-contained
``<svg>`` styled with presentation attributes only. Text is set in ``sans-serif``, which both
renderers resolve to a system font with CJK glyphs.

Every data element (``class="chart-bar"`` or ``class="chart-point"``) carries its value in
``data-value`` and a ``<title>`` ("category · series: value unit") that a browser shows on hover;
the ``<desc>`` lists all the data as text for screen readers. Labels arrive translated and are
escaped here.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from markupsafe import Markup, escape

# Okabe and Ito's palette, which stays distinguishable with the common colour-vision
# deficiencies. Yellow comes last because it is faint on white.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#000000",
    "#F0E442",
)
# Grades A to D, from the same palette: green, blue, amber, red.
GRADE_COLORS = ("#009E73", "#0072B2", "#E69F00", "#D55E00")

FONT_SIZE = 11
TITLE_FONT_SIZE = 12

_TEXT_COLOR = "#333333"
_MUTED_COLOR = "#767676"
_GRID_COLOR = "#e3e3e3"
_AXIS_COLOR = "#8c8c8c"
_PAD = 8
_LINE_HEIGHT = 16
# Room between two value-axis gridlines; the tick count follows the plot's size.
_TICK_SPACING = 40
# Longest category label before it is cut with an ellipsis (the full text stays in the titles
# and the description).
_MAX_LABEL_WIDTH = 110
# Share of a category's slot that its bars fill, and the widest a bar gets, so that two
# categories do not make two slabs; a stack stands alone in its slot and may be wider.
_GROUP_FILL = 0.8
_MAX_BAR = 40
_MAX_STACK = 60
_MIN_PLOT = 20
_ROTATED = 45
_SIN_ROTATED = math.sin(math.radians(_ROTATED))
# Characters XML 1.0 forbids; one in a user-supplied label would make the whole SVG unreadable.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Series:
    """One named row of values, one per category; ``None`` is no data at that point."""

    label: str
    values: Sequence[float | None]


def line_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 260,
    y_min: float | None = 0.0,
    y_max: float | None = None,
    colors: Sequence[str] | None = None,
    empty_text: str = "—",
) -> Markup:
    """Lines across the categories; a ``None`` breaks the line.

    The axis always covers the data: ``y_min`` and ``y_max`` only widen it (``y_max=100`` for
    a score out of 100), and ``y_min=None`` starts it near the lowest value instead of at 0."""
    _check(categories, series)
    values = _present(series)
    if not categories or not values:
        return _empty_chart(title, width, height, empty_text)
    lo = min(values) if y_min is None else min(*values, y_min)
    hi = max(values) if y_max is None else max(*values, y_max)
    palette = _palette(colors, len(series))
    parts, plot, scale = _vertical_frame(
        categories, series, palette, title, unit, width, height, lo, hi, _line_swatch
    )
    slot = plot.width / len(categories)
    radius = min(3.0, max(1.5, slot / 4))
    for item, color in zip(series, palette, strict=False):
        runs: list[list[tuple[float, float]]] = [[]]
        points = []
        for index, value in enumerate(item.values):
            if value is None:
                runs.append([])
                continue
            x = plot.left + (index + 0.5) * slot
            y = scale.at(value, plot.bottom, plot.top)
            runs[-1].append((x, y))
            points.append(
                _mark(
                    "circle",
                    "chart-point",
                    categories[index],
                    item.label,
                    value,
                    _value_text(value, unit),
                    cx=x,
                    cy=y,
                    r=radius,
                )
            )
        # A run of one point has no segment to draw; its marker shows it.
        path = "".join(
            "M" + "L".join(f"{_num(x)} {_num(y)}" for x, y in run) for run in runs if len(run) > 1
        )
        if path:
            parts.append(
                _tag(
                    "path",
                    class_="chart-line",
                    d=path,
                    fill="none",
                    stroke=color,
                    stroke_width=2,
                    stroke_linejoin="round",
                    stroke_linecap="round",
                )
            )
        parts.append(_tag("g", "".join(points), class_="chart-series", fill=color))
    return _svg(title, width, height, _describe(categories, series, unit, empty_text), parts)


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 260,
    horizontal: bool = False,
    colors: Sequence[str] | None = None,
    empty_text: str = "—",
) -> Markup:
    """Bars from zero, one group per category with a bar per series; ``None`` draws no bar.

    ``horizontal`` lists the categories down the left, which suits long names; give it about
    ``20 * len(categories) * len(series)`` pixels of height so that every name shows."""
    _check(categories, series)
    values = _present(series)
    if not categories or not values:
        return _empty_chart(title, width, height, empty_text)
    lo, hi = min(0.0, *values), max(0.0, *values)
    palette = _palette(colors, len(series))
    frame = _horizontal_frame if horizontal else _vertical_frame
    parts, plot, scale = frame(
        categories, series, palette, title, unit, width, height, lo, hi, _rect_swatch
    )
    along = plot.height if horizontal else plot.width
    slot = along / len(categories)
    thickness = min(slot * _GROUP_FILL / len(series), _MAX_BAR)
    for position, (item, color) in enumerate(zip(series, palette, strict=False)):
        bars = []
        for index, value in enumerate(item.values):
            if value is None:
                continue
            offset = (index + 0.5) * slot + (position - len(series) / 2) * thickness
            if horizontal:
                start = scale.at(0.0, plot.left, plot.right)
                end = scale.at(value, plot.left, plot.right)
                box = (min(start, end), plot.top + offset, abs(end - start), thickness)
            else:
                start = scale.at(0.0, plot.bottom, plot.top)
                end = scale.at(value, plot.bottom, plot.top)
                box = (plot.left + offset, min(start, end), thickness, abs(end - start))
            bars.append(_bar(categories[index], item.label, value, _value_text(value, unit), box))
        parts.append(_tag("g", "".join(bars), class_="chart-series", fill=color))
    return _svg(title, width, height, _describe(categories, series, unit, empty_text), parts)


def stacked_bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 260,
    percent: bool = False,
    colors: Sequence[str] | None = None,
    empty_text: str = "—",
) -> Markup:
    """One bar per category with the series stacked in order, e.g. grades A-D per plant (pass
    ``colors=GRADE_COLORS``). Negative values stack down from zero.

    ``percent`` draws each category's share of its total, so bars of different totals compare;
    ``data-value`` is then the share in percent, and the titles add the value in ``unit``.
    A category whose total is 0 draws no bar. Shares of negative values mean nothing, so
    ``percent`` refuses them."""
    _check(categories, series)
    values = _present(series)
    if not categories or not values:
        return _empty_chart(title, width, height, empty_text)
    if percent and min(values) < 0:
        raise ValueError("a percent stack needs values of at least 0")
    columns = [[item.values[index] for item in series] for index in range(len(categories))]
    totals = [sum(value for value in column if value is not None) for column in columns]
    if percent:
        lo, hi = 0.0, 100.0
    else:
        lo = min(0.0, *(sum(v for v in column if v is not None and v < 0) for column in columns))
        hi = max(0.0, *(sum(v for v in column if v is not None and v > 0) for column in columns))
    palette = _palette(colors, len(series))
    parts, plot, scale = _vertical_frame(
        categories,
        series,
        palette,
        title,
        "%" if percent else unit,
        width,
        height,
        lo,
        hi,
        _rect_swatch,
    )
    slot = plot.width / len(categories)
    thickness = min(slot * _GROUP_FILL, _MAX_STACK)
    above = [0.0] * len(categories)
    below = [0.0] * len(categories)
    for item, color in zip(series, palette, strict=False):
        bars = []
        for index, value in enumerate(item.values):
            if value is None or (percent and totals[index] == 0):
                continue
            total = totals[index] if percent else None
            text = _value_text(value, unit, total)
            if total:
                value = value / total * 100
            stack = above if value >= 0 else below
            start = scale.at(stack[index], plot.bottom, plot.top)
            stack[index] += value
            end = scale.at(stack[index], plot.bottom, plot.top)
            x = plot.left + (index + 0.5) * slot - thickness / 2
            bars.append(
                _bar(
                    categories[index],
                    item.label,
                    value,
                    text,
                    (x, min(start, end), thickness, abs(end - start)),
                )
            )
        # A white edge keeps neighbouring segments apart, in greyscale print too.
        parts.append(
            _tag(
                "g",
                "".join(bars),
                class_="chart-series",
                fill=color,
                stroke="#ffffff",
                stroke_width=0.75,
            )
        )
    return _svg(
        title,
        width,
        height,
        _describe(categories, series, unit, empty_text, percent=percent),
        parts,
    )


@dataclass(frozen=True)
class _Plot:
    left: float
    top: float
    right: float
    bottom: float

    @classmethod
    def within(cls, left: float, top: float, right: float, bottom: float) -> _Plot:
        """A size too small for the legend and labels still draws, cut off at the edge,
        rather than inside out."""
        return cls(left, top, max(right, left + _MIN_PLOT), max(bottom, top + _MIN_PLOT))

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class _Scale:
    ticks: tuple[float, ...]
    decimals: int

    def at(self, value: float, start: float, end: float) -> float:
        """The pixel for ``value`` between ``start`` (the lowest tick) and ``end`` (the highest)."""
        lo, hi = self.ticks[0], self.ticks[-1]
        return start + (value - lo) / (hi - lo) * (end - start)

    def label(self, tick: float) -> str:
        return f"{tick:.{self.decimals}f}"

    @property
    def baseline(self) -> float:
        """Where bars start and the axis line runs: zero, when the axis shows it."""
        return 0.0 if self.ticks[0] <= 0 <= self.ticks[-1] else self.ticks[0]


def _nice_scale(lo: float, hi: float, intervals: int) -> _Scale:
    """Ticks 1, 2 or 5 times a power of ten apart, covering ``lo``..``hi`` in about
    ``intervals`` steps."""
    if lo == hi:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if lo == hi:
        hi = 1.0
    exponent = math.floor(math.log10((hi - lo) / intervals))
    candidates = []
    for mantissa, power in ((1, exponent), (2, exponent), (5, exponent), (1, exponent + 1)):
        step = mantissa * 10.0**power
        # The tolerance keeps 0.4 / 0.1 = 4.000000000000001 from adding a tick.
        first = math.floor(lo / step + 1e-9)
        last = math.ceil(hi / step - 1e-9)
        # Closest to the wanted count but never a single interval; on a tie, the larger step.
        count = last - first
        candidates.append((count < 2, abs(count - intervals), -step, first, last, power))
    *_, negative_step, first, last, power = min(candidates)
    decimals = max(0, -power)
    # Adding 0.0 turns a -0.0 into 0.0, which would otherwise print as "-0".
    ticks = tuple(round(i * -negative_step, decimals) + 0.0 for i in range(first, last + 1))
    return _Scale(ticks, decimals)


def _intervals(extent: float, spacing: float = _TICK_SPACING) -> int:
    return max(2, min(10, round(extent / spacing)))


@dataclass(frozen=True)
class _AxisLabels:
    """Category labels under a plot: level when they fit their slots, else turned and thinned
    to every ``every``-th so that neighbours do not overlap."""

    texts: tuple[str, ...]
    every: int
    rotated: bool
    depth: float
    overhang: float

    @classmethod
    def fit(cls, categories: Sequence[str], slot: float) -> _AxisLabels:
        if max(map(_text_width, categories)) + 4 <= slot:
            return cls(tuple(categories), 1, False, _LINE_HEIGHT, 0.0)
        texts = tuple(_fit(category, _MAX_LABEL_WIDTH) for category in categories)
        # Turned labels a slot apart are slot * sin(45°) apart across their lines.
        every = math.ceil(_LINE_HEIGHT / _SIN_ROTATED / slot)
        longest = max(_text_width(text) for text in texts[::every])
        # The first label reaches left of its slot, into the margin.
        overhang = _text_width(texts[0]) * _SIN_ROTATED - slot / 2
        return cls(texts, every, True, longest * _SIN_ROTATED + FONT_SIZE + 10, overhang)


def _vertical_frame(
    categories: Sequence[str],
    series: Sequence[Series],
    palette: Sequence[str],
    title: str,
    unit: str,
    width: int,
    height: int,
    lo: float,
    hi: float,
    swatch: Callable[[float, float, str], str],
) -> tuple[list[str], _Plot, _Scale]:
    """Title, legend, a value axis on the left and the categories along the bottom."""
    parts, top = _header(title, [item.label for item in series], palette, width, swatch)
    unit_y = top + FONT_SIZE
    if unit:
        top += _LINE_HEIGHT
    # The top tick label is centred on its gridline.
    top += FONT_SIZE / 2 + 2
    scale = _nice_scale(lo, hi, _intervals(height - top - _LINE_HEIGHT - _PAD))
    left = _PAD + max(_text_width(scale.label(tick)) for tick in scale.ticks) + 6
    right = width - _PAD
    labels = _AxisLabels.fit(categories, (right - left) / len(categories))
    plot = _Plot.within(max(left, _PAD + labels.overhang), top, right, height - _PAD - labels.depth)

    ys = [scale.at(tick, plot.bottom, plot.top) for tick in scale.ticks]
    parts.append(_grid("".join(f"M{_num(plot.left)} {_num(y)}H{_num(plot.right)}" for y in ys)))
    base = scale.at(scale.baseline, plot.bottom, plot.top)
    parts.append(_axis(f"M{_num(plot.left)} {_num(base)}H{_num(plot.right)}"))
    ticks = "".join(
        _tag("text", scale.label(tick), x=plot.left - 6, y=y, dominant_baseline="central")
        for tick, y in zip(scale.ticks, ys, strict=True)
    )
    if unit:
        ticks += _tag(
            "text", _esc(unit), class_="chart-unit", x=_PAD, y=unit_y, text_anchor="start"
        )
    parts.append(_tag("g", ticks, class_="chart-ticks", fill=_TEXT_COLOR, text_anchor="end"))

    slot = plot.width / len(categories)
    texts = []
    for index in range(0, len(categories), labels.every):
        x = plot.left + (index + 0.5) * slot
        if labels.rotated:
            # The baseline ends below and right of the tick, so that the middle of the turned
            # glyphs points at it and their tops clear the axis.
            x, y = x + 3, plot.bottom + 10
            texts.append(
                _tag(
                    "text",
                    _esc(labels.texts[index]),
                    x=x,
                    y=y,
                    transform=f"rotate(-{_ROTATED} {_num(x)} {_num(y)})",
                )
            )
        else:
            texts.append(
                _tag("text", _esc(labels.texts[index]), x=x, y=plot.bottom + 4 + FONT_SIZE)
            )
    parts.append(
        _tag(
            "g",
            "".join(texts),
            class_="chart-categories",
            fill=_TEXT_COLOR,
            text_anchor="end" if labels.rotated else "middle",
        )
    )
    return parts, plot, scale


def _horizontal_frame(
    categories: Sequence[str],
    series: Sequence[Series],
    palette: Sequence[str],
    title: str,
    unit: str,
    width: int,
    height: int,
    lo: float,
    hi: float,
    swatch: Callable[[float, float, str], str],
) -> tuple[list[str], _Plot, _Scale]:
    """Title, legend, the categories down the left and a value axis along the bottom."""
    parts, top = _header(title, [item.label for item in series], palette, width, swatch)
    label_width = min(max(map(_text_width, categories)), width * 0.3)
    left = _PAD + label_width + 6
    # Numbers along an axis need more room than the same numbers stacked up one.
    scale = _nice_scale(lo, hi, _intervals(width - left - _PAD, 2 * _TICK_SPACING))
    labels = [scale.label(tick) for tick in scale.ticks]
    bottom = height - _PAD - _LINE_HEIGHT - (_LINE_HEIGHT if unit else 0)
    plot = _Plot.within(left, top, width - _PAD - _text_width(labels[-1]) / 2, bottom)

    xs = [scale.at(tick, plot.left, plot.right) for tick in scale.ticks]
    parts.append(_grid("".join(f"M{_num(x)} {_num(plot.top)}V{_num(plot.bottom)}" for x in xs)))
    base = scale.at(scale.baseline, plot.left, plot.right)
    parts.append(_axis(f"M{_num(base)} {_num(plot.top)}V{_num(plot.bottom)}"))
    ticks = "".join(
        _tag("text", label, x=x, y=plot.bottom + 4 + FONT_SIZE)
        for label, x in zip(labels, xs, strict=True)
    )
    if unit:
        ticks += _tag(
            "text",
            _esc(unit),
            class_="chart-unit",
            x=plot.right,
            y=plot.bottom + 4 + FONT_SIZE + _LINE_HEIGHT,
            text_anchor="end",
        )
    parts.append(_tag("g", ticks, class_="chart-ticks", fill=_TEXT_COLOR, text_anchor="middle"))

    slot = plot.height / len(categories)
    every = math.ceil((FONT_SIZE + 3) / slot)
    texts = "".join(
        _tag(
            "text",
            _esc(_fit(categories[index], label_width)),
            x=plot.left - 6,
            y=plot.top + (index + 0.5) * slot,
            dominant_baseline="central",
        )
        for index in range(0, len(categories), every)
    )
    parts.append(_tag("g", texts, class_="chart-categories", fill=_TEXT_COLOR, text_anchor="end"))
    return parts, plot, scale


def _header(
    title: str,
    labels: Sequence[str],
    palette: Sequence[str],
    width: int,
    swatch: Callable[[float, float, str], str],
) -> tuple[list[str], float]:
    """The title and, for more than one series, a legend; and where the plot may start."""
    parts = []
    y = float(_PAD)
    if title:
        parts.append(
            _tag(
                "text",
                _esc(_fit(title, width - 2 * _PAD, TITLE_FONT_SIZE)),
                x=_PAD,
                y=y + TITLE_FONT_SIZE,
                font_size=TITLE_FONT_SIZE,
                font_weight="bold",
                fill=_TEXT_COLOR,
            )
        )
        y += TITLE_FONT_SIZE + 8
    if len(labels) > 1:
        items = []
        x = float(_PAD)
        for label, color in zip(labels, palette, strict=False):
            text = _fit(label, width / 2)
            item_width = 18 + _text_width(text)
            if x > _PAD and x + item_width > width - _PAD:
                x, y = _PAD, y + _LINE_HEIGHT
            middle = y + _LINE_HEIGHT / 2
            items.append(swatch(x, middle, color))
            items.append(_tag("text", _esc(text), x=x + 18, y=middle, dominant_baseline="central"))
            x += item_width + 12
        parts.append(_tag("g", "".join(items), class_="chart-legend", fill=_TEXT_COLOR))
        y += _LINE_HEIGHT
    return parts, y + 4


def _rect_swatch(x: float, middle: float, color: str) -> str:
    return _tag("rect", x=x + 2, y=middle - 5, width=10, height=10, fill=color)


def _line_swatch(x: float, middle: float, color: str) -> str:
    return _tag("path", d=f"M{_num(x)} {_num(middle)}h14", stroke=color, stroke_width=2) + _tag(
        "circle", cx=x + 7, cy=middle, r=3, fill=color
    )


def _grid(path: str) -> str:
    return _tag("path", d=path, fill="none", stroke=_GRID_COLOR, shape_rendering="crispEdges")


def _axis(path: str) -> str:
    return _tag("path", d=path, fill="none", stroke=_AXIS_COLOR, shape_rendering="crispEdges")


def _bar(
    category: str,
    label: str,
    value: float,
    text: str,
    box: tuple[float, float, float, float],
) -> str:
    x, y, width, height = box
    return _mark(
        "rect", "chart-bar", category, label, value, text, x=x, y=y, width=width, height=height
    )


def _mark(
    tag: str,
    css_class: str,
    category: str,
    label: str,
    value: float,
    text: str,
    **geometry: float,
) -> str:
    return _tag(
        tag,
        _tag("title", _esc(f"{category} · {label}: {text}")),
        class_=css_class,
        data_value=_trim(f"{value:.6f}"),
        **geometry,
    )


def _empty_chart(title: str, width: int, height: int, empty_text: str) -> Markup:
    parts, _ = _header(title, (), (), width, _rect_swatch)
    parts.append(
        _tag(
            "text",
            _esc(empty_text),
            class_="chart-empty",
            x=width / 2,
            y=height / 2,
            text_anchor="middle",
            dominant_baseline="central",
            fill=_MUTED_COLOR,
        )
    )
    return _svg(title, width, height, empty_text, parts)


def _svg(title: str, width: int, height: int, description: str, parts: Sequence[str]) -> Markup:
    content = _tag("title", _esc(title)) + _tag("desc", _esc(description)) + "".join(parts)
    # Every text and attribute in it went through _esc.
    return Markup(  # noqa: S704
        _tag(
            "svg",
            content,
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {width} {height}",
            width=width,
            height=height,
            role="img",
            aria_label=title,
            class_="chart",
            font_family="sans-serif",
            font_size=FONT_SIZE,
        )
    )


def _tag(name: str, content: str = "", **attributes: str | float) -> str:
    """An element; ``font_size=11`` writes ``font-size="11"``, ``class_`` writes ``class``.

    ``content`` is markup: escape text with :func:`_esc` first."""
    attrs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{_attribute(value)}"'
        for key, value in attributes.items()
    )
    return f"<{name}{attrs}>{content}</{name}>" if content else f"<{name}{attrs}/>"


def _attribute(value: str | float) -> str:
    return _esc(value) if isinstance(value, str) else _num(value)


def _esc(text: str) -> Markup:
    return escape(_XML_INVALID.sub("", text))


def _describe(
    categories: Sequence[str],
    series: Sequence[Series],
    unit: str,
    empty_text: str,
    *,
    percent: bool = False,
) -> str:
    """All the data as text: ``category: series value, series value; category: …``."""
    rows = []
    for index, category in enumerate(categories):
        column = [item.values[index] for item in series]
        total = sum(value for value in column if value is not None) if percent else None
        cells = [
            empty_text if value is None else _value_text(value, unit, total) for value in column
        ]
        if len(series) > 1:
            cells = [f"{item.label} {cell}" for item, cell in zip(series, cells, strict=True)]
        rows.append(f"{category}: {', '.join(cells)}")
    return "; ".join(rows)


def _value_text(value: float, unit: str, total: float | None = None) -> str:
    """``12.5 h``, ``12件``, or with a total ``45.5% (12家)``."""
    text = _format_value(value)
    if unit:
        # Chinese writes 12件 and 45%, Latin units take a space: 12.5 h.
        joined = unit.startswith(("%", "‰")) or _is_wide(unit[0])
        text = f"{text}{unit}" if joined else f"{text} {unit}"
    if total:
        return f"{_round(value / total * 100, 1)}% ({text})"
    return text


def _format_value(value: float) -> str:
    """Two decimals at most, or three significant digits below 1: 1200, 12.5, 0.37, 0.0042."""
    if value == 0 or abs(value) >= 1:
        decimals = 2
    else:
        decimals = min(6, 2 - math.floor(math.log10(abs(value))))
    return _round(value, decimals)


def _round(value: float, decimals: int) -> str:
    # Half up (四舍五入), as people round, from the shortest decimal that reads back as the
    # float: 5/16 prints 31.3%, and 2.675 prints 2.68 although the float is a hair below it.
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return _trim(f"{exact:f}")


def _num(value: float) -> str:
    return _trim(f"{value:.2f}")


def _trim(number: str) -> str:
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return "0" if number == "-0" else number


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for item in series:
        if len(item.values) != len(categories):
            raise ValueError(
                f"series {item.label!r} has {len(item.values)} values"
                f" for {len(categories)} categories"
            )
        if any(value is not None and not math.isfinite(value) for value in item.values):
            raise ValueError(f"series {item.label!r} has a value that is not a finite number")


def _present(series: Sequence[Series]) -> list[float]:
    return [value for item in series for value in item.values if value is not None]


def _palette(colors: Sequence[str] | None, count: int) -> list[str]:
    source = colors or PALETTE
    return [source[index % len(source)] for index in range(count)]


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in "WF"


def _text_width(text: str, size: float = FONT_SIZE) -> float:
    """An estimate that errs wide: no font metrics are at hand on the server."""
    return sum(size if _is_wide(char) else size * 0.6 for char in text)


def _fit(text: str, max_width: float, size: float = FONT_SIZE) -> str:
    if _text_width(text, size) <= max_width:
        return text
    kept = []
    used = _text_width("…", size)
    for char in text:
        used += _text_width(char, size)
        if used > max_width:
            break
        kept.append(char)
    return "".join(kept).rstrip() + "…"
