"""Server-side SVG charts: well-formed, escaped, readable axes, and the data in every element."""

from __future__ import annotations

import io
import itertools
import math
import re
from collections import defaultdict
from xml.etree import ElementTree

import pypdf
import pytest
from markupsafe import Markup, escape
from weasyprint import HTML

from infra.charts import GRADE_COLORS, PALETTE, Series, bar_chart, line_chart, stacked_bar_chart

SVG = "{http://www.w3.org/2000/svg}"
PLANTS = ["东海一厂", "东海二厂", "宁波"]


def _parse(chart: Markup) -> ElementTree.Element:
    # The charts' own output, not untrusted input.
    root = ElementTree.fromstring(str(chart))  # noqa: S314
    assert root.tag == f"{SVG}svg"
    return root


def _marks(root: ElementTree.Element, css_class: str) -> list[ElementTree.Element]:
    return [element for element in root.iter() if element.get("class") == css_class]


def _values(root: ElementTree.Element, css_class: str) -> list[float]:
    return [float(element.get("data-value", "")) for element in _marks(root, css_class)]


def _tip(element: ElementTree.Element) -> str:
    return element.findtext(f"{SVG}title") or ""


def _group_texts(root: ElementTree.Element, css_class: str) -> list[str]:
    (group,) = _marks(root, css_class)
    return [text.text or "" for text in group.iter(f"{SVG}text")]


def _text_of(root: ElementTree.Element, css_class: str) -> str:
    (element,) = _marks(root, css_class)
    return element.text or ""


def _ticks(root: ElementTree.Element) -> list[str]:
    (group,) = _marks(root, "chart-ticks")
    return [
        text.text or "" for text in group.iter(f"{SVG}text") if text.get("class") != "chart-unit"
    ]


def _all_charts(categories: list[str], series: list[Series], title: str) -> list[Markup]:
    return [
        line_chart(categories, series, title=title),
        bar_chart(categories, series, title=title),
        bar_chart(categories, series, title=title, horizontal=True),
        stacked_bar_chart(categories, series, title=title),
        stacked_bar_chart(categories, series, title=title, percent=True),
    ]


def test_every_chart_is_one_accessible_svg_element() -> None:
    series = [Series("2025", [12, 30, 7]), Series("2026", [15, None, 9.5])]
    for chart in _all_charts(PLANTS, series, "作业票数量"):
        assert isinstance(chart, Markup)
        # Already markup: a template's autoescape leaves it as it is.
        assert escape(chart) == chart
        root = _parse(chart)
        assert root.get("viewBox") == "0 0 640 260"
        assert (root.get("width"), root.get("height")) == ("640", "260")
        assert root.get("role") == "img"
        assert root.get("aria-label") == "作业票数量"
        assert root.findtext(f"{SVG}title") == "作业票数量"
        assert root.get("font-family") == "sans-serif"
        assert "东海二厂" in (root.findtext(f"{SVG}desc") or "")


def test_the_svg_needs_no_script_and_no_outside_resource() -> None:
    series = [Series("2025", [12, 30, 7])]
    for chart in _all_charts(PLANTS, series, "t"):
        assert "<script" not in chart
        assert "href" not in chart
        assert "url(" not in chart
        assert "style" not in chart


def test_grouped_bars_one_per_value_with_its_value_and_a_title() -> None:
    chart = bar_chart(
        PLANTS,
        [Series("2025", [12, 30, 7]), Series("2026", [15, None, 9.5])],
        title="作业票数量",
        unit="件",
    )
    root = _parse(chart)
    bars = _marks(root, "chart-bar")
    assert len(bars) == 5
    assert _values(root, "chart-bar") == [12, 30, 7, 15, 9.5]
    assert [_tip(bar) for bar in bars[3:]] == ["东海一厂 · 2026: 15件", "宁波 · 2026: 9.5件"]
    assert all(bar.tag == f"{SVG}rect" for bar in bars)
    assert _text_of(root, "chart-unit") == "件"


def test_bar_heights_are_proportional_to_the_values() -> None:
    root = _parse(bar_chart(PLANTS, [Series("n", [10, 40, 20])], title="t"))
    heights = [float(bar.get("height", "")) for bar in _marks(root, "chart-bar")]
    assert heights[1] == pytest.approx(4 * heights[0], abs=0.05)
    assert heights[2] == pytest.approx(2 * heights[0], abs=0.05)


def test_a_legend_shows_only_for_more_than_one_series() -> None:
    single = _parse(bar_chart(PLANTS, [Series("2025", [1, 2, 3])], title="t"))
    assert _marks(single, "chart-legend") == []
    double = _parse(
        bar_chart(PLANTS, [Series("2025", [1, 2, 3]), Series("2026", [3, 2, 1])], title="t")
    )
    assert _group_texts(double, "chart-legend") == ["2025", "2026"]


def test_text_is_escaped_everywhere() -> None:
    nasty = "<b>A&B</b> \"q\" 'x'"
    chart = bar_chart(
        [nasty, "中文"],
        [Series(nasty, [1, 2]), Series("二", [3, None])],
        title=nasty,
        unit="<&>",
        empty_text=nasty,
    )
    assert "<b>" not in chart
    root = _parse(chart)
    assert root.get("aria-label") == nasty
    assert root.findtext(f"{SVG}title") == nasty
    assert nasty in (root.findtext(f"{SVG}desc") or "")
    assert _tip(_marks(root, "chart-bar")[0]) == f"{nasty} · {nasty}: 1 <&>"
    assert nasty in _group_texts(root, "chart-legend")


def test_characters_xml_forbids_are_dropped_rather_than_breaking_the_svg() -> None:
    root = _parse(line_chart(["a\x00b", "c"], [Series("s\x1b", [1, 2])], title="t\x08"))
    assert root.findtext(f"{SVG}title") == "t"
    assert _tip(_marks(root, "chart-point")[0]) == "ab · s: 1"


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (87, ["0", "20", "40", "60", "80", "100"]),
        (0.37, ["0.0", "0.1", "0.2", "0.3", "0.4"]),
        (1180, ["0", "200", "400", "600", "800", "1000", "1200"]),
        (4.2, ["0", "1", "2", "3", "4", "5"]),
    ],
)
def test_value_ticks_are_nice_numbers(top: float, expected: list[str]) -> None:
    root = _parse(bar_chart(PLANTS, [Series("n", [top / 3, top, top / 2])], title="t"))
    assert _ticks(root) == expected


def test_ticks_are_spaced_in_ones_twos_and_fives() -> None:
    for top in (0.0042, 0.37, 3, 17, 87, 640, 1234, 98765):
        for height in (160, 260, 480):
            root = _parse(line_chart(["a", "b"], [Series("n", [0, top])], title="t", height=height))
            ticks = [float(tick) for tick in _ticks(root)]
            steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
            assert len(steps) == 1
            (step,) = steps
            mantissa = step / 10 ** math.floor(math.log10(step))
            assert round(mantissa, 6) in (1, 2, 5)
            assert ticks[0] <= 0 and ticks[-1] >= top
            assert 3 <= len(ticks) <= 12


def test_values_print_without_long_floats() -> None:
    values = [1200.0, 12.5, 1 / 3, 0.0042]
    root = _parse(line_chart(["a", "b", "c", "d"], [Series("s", values)], title="t", unit="h"))
    tips = [_tip(point) for point in _marks(root, "chart-point")]
    assert tips == ["a · s: 1200 h", "b · s: 12.5 h", "c · s: 0.333 h", "d · s: 0.0042 h"]
    assert _values(root, "chart-point") == pytest.approx(values, abs=1e-6)


def test_negative_values_hang_below_a_zero_axis() -> None:
    root = _parse(bar_chart(PLANTS, [Series("Δ", [12, -4, 30])], title="t"))
    ticks = [float(tick) for tick in _ticks(root)]
    assert ticks[0] < 0 < ticks[-1] and 0 in ticks
    up, down, _ = _marks(root, "chart-bar")
    # Both bars meet at the zero line: one ends where the other starts.
    assert float(up.get("y", "")) + float(up.get("height", "")) == pytest.approx(
        float(down.get("y", "")), abs=0.05
    )


def test_a_line_axis_covers_the_data_and_the_requested_range() -> None:
    series = [Series("score", [72, 95, 88])]
    assert _ticks(_parse(line_chart(PLANTS, series, title="t", y_max=100)))[-1] == "100"
    from_data = [
        float(tick) for tick in _ticks(_parse(line_chart(PLANTS, series, title="t", y_min=None)))
    ]
    assert 0 < from_data[0] <= 72
    below = [
        float(tick)
        for tick in _ticks(_parse(line_chart(PLANTS, [Series("d", [3, -2, 1])], title="t")))
    ]
    assert below[0] <= -2 and 0 in below


def test_none_breaks_a_line_into_separate_runs() -> None:
    root = _parse(line_chart(list("abcdef"), [Series("s", [1, 2, None, 4, 5, 6])], title="t"))
    (line,) = _marks(root, "chart-line")
    assert line.get("d", "").count("M") == 2
    assert len(_marks(root, "chart-point")) == 5


def test_a_point_alone_between_gaps_still_shows_as_a_marker() -> None:
    root = _parse(line_chart(list("abcde"), [Series("s", [1, None, 3, None, 5])], title="t"))
    assert _marks(root, "chart-line") == []
    assert _values(root, "chart-point") == [1, 3, 5]


def test_stacked_percent_shares_add_up_to_100_in_each_category() -> None:
    grades = [
        Series("A", [5, 3, 0]),
        Series("B", [8, None, 1]),
        Series("C", [2, 4, 1]),
        Series("D", [1, 0, 4]),
    ]
    root = _parse(stacked_bar_chart(PLANTS, grades, title="等级分布", unit="家", percent=True))
    by_category: dict[str, list[ElementTree.Element]] = defaultdict(list)
    for bar in _marks(root, "chart-bar"):
        by_category[bar.get("x", "")].append(bar)
    assert len(by_category) == 3
    stack_heights = []
    for bars in by_category.values():
        assert sum(float(bar.get("data-value", "")) for bar in bars) == pytest.approx(100, abs=1e-3)
        stack_heights.append(sum(float(bar.get("height", "")) for bar in bars))
    assert max(stack_heights) - min(stack_heights) < 0.05
    assert _ticks(root)[-1] == "100"
    assert _text_of(root, "chart-unit") == "%"
    assert _tip(_marks(root, "chart-bar")[0]) == "东海一厂 · A: 31.3% (5家)"


def test_stacked_segments_sit_on_each_other() -> None:
    root = _parse(stacked_bar_chart(["x"], [Series("A", [3]), Series("B", [2])], title="t"))
    lower, upper = _marks(root, "chart-bar")
    assert float(upper.get("y", "")) + float(upper.get("height", "")) == pytest.approx(
        float(lower.get("y", "")), abs=0.05
    )
    assert float(lower.get("height", "")) == pytest.approx(
        1.5 * float(upper.get("height", "")), abs=0.05
    )


def test_a_category_with_nothing_to_share_draws_no_stack() -> None:
    root = _parse(
        stacked_bar_chart(
            PLANTS, [Series("A", [1, 0, None]), Series("B", [1, 0, None])], title="t", percent=True
        )
    )
    assert _values(root, "chart-bar") == [50, 50]


def test_a_percent_stack_refuses_negative_values() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        stacked_bar_chart(["x"], [Series("A", [-1])], title="t", percent=True)


def test_grade_colours_are_given_to_the_series_in_order() -> None:
    grades = [Series(grade, [1, 2, 3]) for grade in "ABCD"]
    root = _parse(stacked_bar_chart(PLANTS, grades, title="t", colors=GRADE_COLORS))
    fills = [group.get("fill") for group in _marks(root, "chart-series")]
    assert fills == list(GRADE_COLORS)


def test_the_palette_has_eight_colours_and_repeats_after_them() -> None:
    assert len(set(PALETTE)) >= 8
    series = [Series(str(i), [i]) for i in range(len(PALETTE) + 1)]
    fills = [
        group.get("fill")
        for group in _marks(_parse(bar_chart(["x"], series, title="t")), "chart-series")
    ]
    assert fills == [*PALETTE, PALETTE[0]]


@pytest.mark.parametrize(
    ("categories", "series"),
    [
        ([], []),
        ([], [Series("s", [])]),
        (PLANTS, []),
        (PLANTS, [Series("s", [None, None, None])]),
    ],
)
def test_no_data_draws_the_empty_text(categories: list[str], series: list[Series]) -> None:
    for chart in [
        line_chart(categories, series, title="评分", empty_text="暂无数据"),
        bar_chart(categories, series, title="评分", empty_text="暂无数据", horizontal=True),
        stacked_bar_chart(categories, series, title="评分", empty_text="暂无数据", percent=True),
    ]:
        root = _parse(chart)
        assert root.findtext(f"{SVG}title") == "评分"
        assert _text_of(root, "chart-empty") == "暂无数据"
        assert root.findtext(f"{SVG}desc") == "暂无数据"
        assert _marks(root, "chart-bar") == _marks(root, "chart-point") == []


def test_series_must_have_a_value_per_category() -> None:
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        bar_chart(PLANTS, [Series("s", [1, 2])], title="t")
    with pytest.raises(ValueError, match="finite"):
        line_chart(PLANTS, [Series("s", [1, math.nan, 2])], title="t")


def test_fifty_two_weeks_turn_and_thin_their_labels_but_keep_every_point() -> None:
    weeks = [f"W{week:02d}" for week in range(1, 53)]
    values = [float(week % 7) for week in range(52)]
    root = _parse(line_chart(weeks, [Series("事件", values)], title="t"))
    assert len(_marks(root, "chart-point")) == 52
    (group,) = _marks(root, "chart-categories")
    labels = list(group.iter(f"{SVG}text"))
    assert 8 <= len(labels) < 52
    assert labels[0].text == "W01"
    assert all(label.get("transform", "").startswith("rotate(-45") for label in labels)


def test_few_short_labels_stay_level_and_all_show() -> None:
    root = _parse(bar_chart(PLANTS, [Series("n", [1, 2, 3])], title="t"))
    (group,) = _marks(root, "chart-categories")
    assert [label.text for label in group.iter(f"{SVG}text")] == PLANTS
    assert "transform" not in str(ElementTree.tostring(group))


def test_long_labels_are_shortened_on_the_axis_but_whole_in_the_titles() -> None:
    name = "浙江恒达安装工程有限公司第三检修分公司"
    root = _parse(bar_chart([name, "b"], [Series("分", [87, 60])], title="t", horizontal=True))
    axis_label = _group_texts(root, "chart-categories")[0]
    assert axis_label.endswith("…") and name.startswith(axis_label[:-1])
    assert _tip(_marks(root, "chart-bar")[0]).startswith(name)


def test_horizontal_bars_grow_rightwards_from_zero() -> None:
    root = _parse(bar_chart(PLANTS, [Series("n", [10, -5, 20])], title="t", horizontal=True))
    first, negative, last = _marks(root, "chart-bar")
    zero = float(first.get("x", ""))
    assert float(last.get("x", "")) == pytest.approx(zero)
    assert float(negative.get("x", "")) + float(negative.get("width", "")) == pytest.approx(
        zero, abs=0.05
    )
    assert float(last.get("width", "")) == pytest.approx(
        2 * float(first.get("width", "")), abs=0.05
    )
    assert float(first.get("y", "")) < float(negative.get("y", "")) < float(last.get("y", ""))


def test_coordinates_are_short_numbers() -> None:
    chart = line_chart(list("abc"), [Series("s", [1 / 3, 2 / 3, 1])], title="t")
    geometry = {"x", "y", "width", "height", "cx", "cy", "r", "d", "transform"}
    numbers = [
        number
        for element in _parse(chart).iter()
        for name, value in element.attrib.items()
        if name in geometry
        for number in re.findall(r"\d+\.\d+", value)
    ]
    assert numbers
    assert max(len(number.split(".")[1]) for number in numbers) <= 2


def test_weasyprint_renders_a_chart_into_a_pdf() -> None:
    chart = stacked_bar_chart(
        PLANTS,
        [Series(grade, [3, 1, 2]) for grade in "ABCD"],
        title="Grades 承包商等级分布",
        percent=True,
        colors=GRADE_COLORS,
    )
    html = f"<!doctype html><html lang='zh-CN'><body><h1>评分卡</h1>{chart}</body></html>"
    pdf = HTML(string=html).write_pdf()
    assert pdf is not None and pdf.startswith(b"%PDF")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    assert "Grades" in reader.pages[0].extract_text()
