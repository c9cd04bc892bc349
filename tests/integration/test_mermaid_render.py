"""The Mermaid the reports emit is rendered by a real Mermaid: @mermaid-js/mermaid-cli (installed by
scripts/setup-mermaid.sh) driving Debian's Chromium, offline. Each chart must render, show its title
and draw one line per series; a broken chart must be refused, so the check can fail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ci_helpers.plots import Plot, PlotSeries
from ci_helpers.report.mermaid import PLOT_PALETTE, plots_section

ROOT = Path(__file__).resolve().parents[2]
MMDC = ROOT / ".cache" / "mermaid" / "node_modules" / ".bin" / "mmdc"


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    chromium = shutil.which("chromium")
    if not (MMDC.exists() and chromium):
        if os.environ.get("CI") == "true":
            pytest.fail("mermaid-cli or chromium is missing: scripts/setup-mermaid.sh installs them")
        pytest.skip("mermaid-cli not installed (bash scripts/setup-mermaid.sh)")
    folder = tmp_path_factory.mktemp("mermaid")
    config = folder / "puppeteer.json"
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    config.write_text(json.dumps({"executablePath": chromium, "args": [*flags, "--disable-sync", "--no-first-run"]}))

    def _render(markdown: str, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        source = folder / f"{name}.md"
        source.write_text(markdown)
        result = subprocess.run(
            [str(MMDC), "-q", "-p", str(config), "-i", str(source), "-o", str(folder / f"{name}-out.md"), "-e", "svg"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            env={**os.environ, "HOME": str(folder)},
        )
        svgs = sorted(folder.glob(f"{name}-out-*.svg"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return result, [svg.read_text() for svg in svgs]

    return _render


def _series(name: str, n: int, f) -> PlotSeries:
    xs = tuple(i / (n - 1) for i in range(n))
    return PlotSeries(name, xs, tuple(f(x) for x in xs))


PLOTS = (
    Plot(
        "eval/plots/prc.json",
        "chart",
        title="Precision-Recall",
        x_label="recall",
        y_label="precision",
        series=(_series("train", 500, lambda x: 1 - x**2), _series("test", 500, lambda x: 1 - x**1.5)),
    ),
    Plot(
        "categories",
        "chart",
        title="Errors by district",
        x_label="district",
        y_label="rmse",
        series=(PlotSeries("rmse", ("north", "south", "<1H OCEAN"), (0.4, 0.5, 0.45)),),
    ),
    Plot(
        'evil"`\n```<img src=x>',
        "chart",
        title='title "with" `quotes`\n```',
        x_label="x <b>",
        y_label='y"',
        series=(_series('s"1`', 3, lambda x: x), _series("s|2", 3, lambda x: -x)),
    ),
)


@pytest.mark.integration
def test_the_plots_the_report_draws_render_in_real_mermaid(render):
    markdown = "\n".join(plots_section(PLOTS))
    result, svgs = render(markdown, "plots")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(svgs) == len(PLOTS)
    for plot, svg in zip(PLOTS, svgs, strict=True):
        assert len(re.findall(r'class="line-plot-\d+"', svg)) == len(plot.series), plot.id
        # each line in our palette's colour: Mermaid's own first colour is too pale to read
        for colour in PLOT_PALETTE[: len(plot.series)]:
            assert f'stroke="{colour}"' in svg, (plot.id, colour)
    assert ">Precision-Recall</text>" in svgs[0]
    assert ">Errors by district</text>" in svgs[1]
    assert "<img" not in svgs[2]


@pytest.mark.integration
def test_a_broken_chart_is_refused_so_the_check_can_fail(render):
    broken = '```mermaid\nxychart-beta\n    title "unclosed\n    x-axis "x" 0 --> 1\n    line "a" [1, 2, oops]\n```\n'
    result, svgs = render(broken, "broken")
    assert result.returncode != 0
    assert not svgs
