"""The Mermaid xychart renderer of the report's plots section.

No Mermaid parser runs offline here (mermaid-cli needs a headless browser it downloads), so each
block is checked against the xychart-beta grammar the renderer targets: `xychart-beta`, then
`title "..."`, `x-axis "..." MIN --> MAX` or `x-axis "..." ["a", ...]`, `y-axis "..."`, and
`line "..." [N, ...]` lines, with quoted text free of `"` and plain decimal numbers.
"""

from __future__ import annotations

import itertools
import re

from ci_helpers.plots import Plot, PlotSeries
from ci_helpers.report.mermaid import label, number, plots_section, xychart

QUOTED = r'"[^"`\n<>]*"'
NUM = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"
GRAMMAR = [
    re.compile(rf"    title {QUOTED}"),
    re.compile(rf"    x-axis {QUOTED} (?:{NUM} --> {NUM}|\[{QUOTED}(?:, {QUOTED})*\])"),
    re.compile(rf"    y-axis {QUOTED}"),
]
LINE = re.compile(rf"    line ({QUOTED}) \[({NUM}(?:, {NUM})*)\]")


PALETTE_INIT = re.compile(
    r'%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "#[0-9a-f]{6}(?:, #[0-9a-f]{6})*"\}\}\}\}%%'
)


def blocks(markdown: str) -> list[list[str]]:
    """Each ```mermaid block's lines after its palette directive (checked here: our colours only)."""
    found = []
    for block in re.findall(r"```mermaid\n(.*?)\n```", markdown, re.S):
        lines = block.split("\n")
        assert PALETTE_INIT.fullmatch(lines[0]), lines[0]
        found.append(lines[1:])
    return found


def check_block(block: list[str]) -> list[list[float]]:
    """Assert `block` follows the grammar; return each line series' values."""
    assert block[0] == "xychart-beta"
    for pattern, line in zip(GRAMMAR, block[1:4], strict=True):
        assert pattern.fullmatch(line), line
    series = []
    for line in block[4:]:
        match = LINE.fullmatch(line)
        assert match, line
        series.append([float(v) for v in match.group(2).split(", ")])
    assert series
    assert len({len(s) for s in series}) == 1  # every line on the same x points
    return series


def chart(name="p", title="P", series=None, x="x", y="y") -> Plot:
    series = series or (PlotSeries("s", (0.0, 1.0, 2.0), (1.0, 2.0, 3.0)),)
    return Plot(name, "chart", title=title, x_label=x, y_label=y, series=tuple(series))


def test_a_simple_chart_follows_the_grammar():
    lines = xychart(chart())
    (block,) = blocks("\n".join(lines))
    assert check_block(block) == [[1, 2, 3]]
    assert block[1] == '    title "P"'
    assert block[2] == '    x-axis "x" 0 --> 2'
    assert lines[-1] == "Lines, in order: 1. `s`"


def test_hostile_names_cannot_break_out_of_the_quotes_or_the_fence():
    hostile = 'a"b\nc`d`<img src=x onerror=alert(1)>%%{init}%%#35;&amp;\\'
    markdown = "\n".join(
        xychart(chart(name=hostile, title=hostile, x=hostile, y=hostile, series=[PlotSeries(hostile, (1, 2), (3, 4))]))
    )
    (block,) = blocks(markdown)
    check_block(block)
    assert markdown.count("```") == 2
    for bad in ('a"b', "`", "<img", "\nc", "%%", "#35", "&amp"):
        assert bad not in "\n".join(block)
    assert block[1].startswith('    title "a b c d img src=x onerror=alert(1)')
    assert "<img" not in markdown  # the legend escapes it too
    assert label('"quoted"') == "quoted"
    assert len(label("x" * 500)) == 60


def test_numbers_are_plain_decimals():
    assert [number(v) for v in (0.0, -0.0, 1.0, 2.5, 1e-7, 123456789.0, 0.1234567, -3.25e-3)] == [
        "0",
        "0",
        "1",
        "2.5",
        "0.0000001",
        "123456789",
        "0.123457",
        "-0.00325",
    ]


def test_long_series_are_downsampled_evenly_onto_the_x_range():
    xs = tuple(float(i) for i in range(1000))
    lines = xychart(chart(series=[PlotSeries("s", xs, tuple(2 * x for x in xs))]))
    (block,) = blocks("\n".join(lines))
    (values,) = check_block(block)
    assert len(values) == 60
    assert block[2] == '    x-axis "x" 0 --> 999'
    assert values[0] == 0
    assert values[-1] == 1998
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert max(steps) - min(steps) < 0.02  # even, up to the 6 significant digits printed


def test_uneven_x_is_resampled_by_interpolation():
    # a ROC-like curve with uneven fpr: values land on an even grid over 0 --> 1
    series = PlotSeries("roc", (0.0, 0.1, 1.0), (0.0, 0.5, 1.0))
    (block,) = blocks("\n".join(xychart(chart(series=[series]))))
    (values,) = check_block(block)
    assert values == [0.0, 0.722222, 1.0]  # at x = 0, 0.5, 1


def test_several_series_each_get_a_line_in_order():
    series = [
        PlotSeries("train.json", (0.0, 0.5, 1.0), (1.0, 0.5, 0.0)),
        PlotSeries("test.json", (0.0, 0.5, 1.0), (1.0, 0.75, 0.0)),
        PlotSeries("val.json", (0.0, 1.0), (1.0, 0.0)),
    ]
    lines = xychart(chart(series=series))
    (block,) = blocks("\n".join(lines))
    assert check_block(block) == [[1, 0.5, 0], [1, 0.75, 0], [1, 0.5, 0]]
    assert [LINE.fullmatch(line).group(1) for line in block[4:]] == ['"train.json"', '"test.json"', '"val.json"']
    assert lines[-1] == "Lines, in order: 1. `train.json`, 2. `test.json`, 3. `val.json`"


def test_categorical_x_keeps_the_labels_in_order():
    series = [
        PlotSeries("a", ("cat", 'd"og', "bird"), (1.0, 2.0, 3.0)),
        PlotSeries("b", ("cat", "bird"), (4.0, 6.0)),
    ]
    (block,) = blocks("\n".join(xychart(chart(series=series))))
    assert check_block(block) == [[1, 2, 3], [4, 4, 6]]  # b has no d"og: its previous value
    assert block[2] == '    x-axis "x" ["cat", "d og", "bird"]'


def test_many_categories_are_downsampled():
    labels = tuple(f"e{i}" for i in range(200))
    (block,) = blocks("\n".join(xychart(chart(series=[PlotSeries("s", labels, tuple(range(200)))]))))
    (values,) = check_block(block)
    assert len(values) == 60
    assert values[0] == 0
    assert values[-1] == 199
    assert '"e0"' in block[2]
    assert '"e199"' in block[2]


def test_the_section_caps_charts_and_size_and_says_what_it_left_out():
    plots = [chart(name=f"plot{i}", title=f"Plot {i}") for i in range(9)]
    section = "\n".join(plots_section(plots))
    assert len(blocks(section)) == 6
    assert "3 more chart(s) left out" in section
    assert "`plot6`, `plot7`, `plot8`" in section
    # the size cap: big charts stop early, and in order (never a later, smaller one)
    xs = tuple(float(i) for i in range(60))
    big = [chart(name=f"big{i}", series=[PlotSeries(f"s{j}", xs, xs) for j in range(8)]) for i in range(6)]
    section = "\n".join(plots_section([*big, chart(name="small")], max_chars=6000))
    assert len(section) < 6000 + 500
    assert 1 <= len(blocks(section)) < 6
    assert "`small`" in section.split("left out")[1]


def test_images_unavailable_plots_and_warnings_are_listed():
    plots = [
        Plot("eval/confusion.png", "image", title="eval/confusion.png"),
        Plot("eval/prc.json", "unavailable", title="eval/prc.json", reason="not <pulled>"),
        chart(),
    ]
    section = "\n".join(plots_section(plots, "DVC could not read `x`"))
    assert len(blocks(section)) == 1
    assert "actions/upload-artifact" in section
    assert "- `eval/confusion.png`" in section
    assert "- `eval/prc.json`: not &lt;pulled&gt;" in section
    assert "⚠️ DVC could not read \\`x\\`" in section
    assert plots_section([]) == []


def test_rendering_is_deterministic():
    series = [
        PlotSeries(f"s{i}", tuple(float(x) for x in range(100)), tuple(float(x % 7) for x in range(100)))
        for i in range(3)
    ]
    plots = [chart(name=f"p{i}", series=series) for i in range(3)]
    assert plots_section(plots) == plots_section(list(plots))
