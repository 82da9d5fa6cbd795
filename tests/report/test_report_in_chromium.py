"""The HTML report as a person sees it: headless Chromium (Debian's package) opens the file offline,
runs its JavaScript, and we read back the screenshot's pixels, the DOM plotly drew, and every
request the page made (Chromium's net log).

Skips, saying why, where no Chromium or Chrome is installed (.ci/run installs Debian's; GitHub's
Ubuntu runners have Chromium and Google Chrome); KTRDR_CHROMIUM names the browser to use.
Set KTRDR_REPORT_SCREENSHOTS=<dir> to keep the screenshots for a look.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from results_factory import (
    BACKTEST_TRACES,
    PEAK_AT,
    TRAINING_TRACES,
    TROUGH_AT,
    backtest_result,
    older_backtest_result,
    operation,
    training_result,
)


def find_chromium() -> str | None:
    """KTRDR_CHROMIUM when it is set, else the first of these browsers on PATH."""
    if wanted := os.environ.get("KTRDR_CHROMIUM"):
        return shutil.which(wanted)
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next(filter(None, map(shutil.which, names)), None)


CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no headless Chromium or Chrome (KTRDR_CHROMIUM, or Debian: apt-get install chromium); "
        "the report is still checked as HTML by test_html_report.py",
    ),
    pytest.mark.timeout(600),
]
pytest.importorskip("plotly", reason="the HTML report needs the report extra")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")

from ktrdr.report.html import GAIN, LOSS, STRATEGY, operation_report  # noqa: E402

WINDOW = (1280, 2400)


@dataclass
class Rendered:
    dom: str
    page_requests: list[str]
    screenshot: Path | None = None


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # Whatever the page or the browser asks for goes nowhere: names do not resolve and every
        # request is sent to a closed port on loopback (the net log still records the request).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        f"--user-data-dir={profile}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--hide-scrollbars",
        "--virtual-time-budget=15000",
        *args,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page itself asked for (its requests carry the file:// page as their network
    isolation key; Chromium's own background requests do not), other than file: and data: ones."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and str(params.get("network_isolation_key", "")).startswith("file://"):
            url = params.get("url", "")
            if not url.startswith(("file:", "data:", "blob:")):
                urls.append(url)
    return urls


def render(page: Path, work: Path, screenshot: bool = True) -> Rendered:
    net_log = work / f"{page.stem}.netlog.json"
    dom = chromium(page, work / "profile-dom", f"--log-net-log={net_log}", "--dump-dom").stdout
    shot = None
    if screenshot:
        shot = work / f"{page.stem}.png"
        chromium(page, work / "profile-shot", f"--screenshot={shot}")
        if keep := os.environ.get("KTRDR_REPORT_SCREENSHOTS"):
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / shot.name)
    return Rendered(dom, page_requests(net_log), shot)


def figure_dom(dom: str, div_id: str) -> str:
    """What plotly drew into the figure's div (up to the script that drew it)."""
    start = dom.find(f'<div id="{div_id}"')
    if start < 0:
        return ""
    end = dom.find("<script", start)
    return dom[start:end]


def chart_problems(dom: str, div_id: str, names: list[str]) -> list[str]:
    """Why the figure did not render with those traces (an empty list when it did)."""
    drawn = figure_dom(dom, div_id)
    problems = []
    if drawn.count('class="main-svg"') < 2:
        problems.append(f"{div_id}: plotly drew no SVG")
    legend = [html.unescape(t) for t in re.findall(r'class="legendtext"[^>]*>([^<]*)<', drawn)]
    if legend != names:
        problems.append(f"{div_id}: legend {legend}, expected {names}")
    return problems


def line_extreme(drawn: str, trace: int, lowest: bool) -> float:
    """Where trace number ``trace``'s line reaches its highest (or lowest) point on screen, as a
    fraction of the line's horizontal extent (SVG y grows downwards)."""
    paths = re.findall(r'<path class="js-line" d="([^"]+)"', drawn)
    points = [tuple(map(float, p.split(","))) for p in re.findall(r"[-\d.]+,[-\d.]+", paths[trace])]
    xs = [x for x, _ in points]
    x, _ = (max if lowest else min)(points, key=lambda point: point[1])
    return (x - min(xs)) / (max(xs) - min(xs))


def colour_counts(png: Path, colours: dict[str, str], tolerance: int = 24) -> dict[str, Any]:
    """Per named colour: how many pixels have it, and the horizontal extent they span (pixels)."""
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    found: dict[str, Any] = {"std": float(pixels.std())}
    for name, hex_colour in colours.items():
        rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
        mask = (np.abs(pixels - rgb) <= tolerance).all(axis=2)
        columns = np.flatnonzero(mask.any(axis=0))
        found[name] = (int(mask.sum()), int(columns[-1] - columns[0]) if columns.size else 0)
    return found


def blend(hex_colour: str, opacity: float) -> str:
    """A colour drawn at ``opacity`` over white."""
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(opacity * c + (1 - opacity) * 255):02x}" for c in rgb)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chromium")


def write(work: Path, name: str, page: str) -> Path:
    path = work / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def backtest(work: Path) -> Rendered:
    return render(
        write(work, "backtest", operation_report(operation("backtesting", backtest_result()))), work
    )


def test_the_backtest_page_renders_its_charts_where_the_data_says(backtest: Rendered) -> None:
    assert chart_problems(backtest.dom, "backtest-chart", BACKTEST_TRACES) == []
    drawn = figure_dom(backtest.dom, "backtest-chart")
    # The strategy line (trace 0) peaks 30 % along and bottoms 70 % along; so does the drawdown (2).
    assert line_extreme(drawn, 0, lowest=False) == pytest.approx(PEAK_AT, abs=0.02)
    assert line_extreme(drawn, 0, lowest=True) == pytest.approx(TROUGH_AT, abs=0.02)
    assert line_extreme(drawn, 2, lowest=True) == pytest.approx(TROUGH_AT, abs=0.02)
    assert "trade 11 (short)" in backtest.dom
    assert backtest.page_requests == []


def test_the_backtest_screenshot_shows_the_lines_the_fill_and_the_trades(backtest: Rendered) -> None:
    assert backtest.screenshot is not None
    seen = colour_counts(
        backtest.screenshot,
        {"strategy": STRATEGY, "drawdown": blend(LOSS, 0.6), "long entries": GAIN},
    )
    assert seen["std"] > 20, "the page is blank"
    # The equity line runs across the chart; the drawdown is an area; the long entries are marked.
    strategy_pixels, strategy_width = seen["strategy"]
    assert strategy_pixels > 800 and strategy_width > 0.6 * WINDOW[0], seen
    assert seen["drawdown"][0] > 20_000, seen
    assert seen["long entries"][0] > 60, seen


def test_the_training_page_renders_its_curves_and_confusion_matrix(work: Path) -> None:
    rendered = render(
        write(work, "training", operation_report(operation("training", training_result()))), work
    )
    assert chart_problems(rendered.dom, "training-curves", TRAINING_TRACES) == []
    matrix = figure_dom(rendered.dom, "confusion-matrix")
    assert matrix.count('class="main-svg"') >= 2
    assert re.findall(r"<text[^>]*>(\d+)</text>", matrix)[:9] == [
        "106", "122", "36", "38", "615", "188", "22", "181", "487",
    ]  # fmt: skip
    assert rendered.page_requests == []
    assert rendered.screenshot is not None
    seen = colour_counts(rendered.screenshot, {"train": STRATEGY, "validation": LOSS})
    assert seen["train"][0] > 300 and seen["validation"][0] > 300, seen


def test_an_older_backtest_renders_what_it_has(work: Path) -> None:
    page = operation_report(operation("backtesting", older_backtest_result()))
    rendered = render(write(work, "older-backtest", page), work, screenshot=False)
    assert chart_problems(rendered.dom, "backtest-chart", ["strategy", "drawdown"]) == []
    assert rendered.page_requests == []


def test_the_checks_fail_on_a_page_that_does_not_render_or_reaches_out(work: Path) -> None:
    """Without plotly.js the divs stay empty; a page that loads an outside image is caught."""
    page = operation_report(operation("backtesting", backtest_result(points=50, trades=2)))
    inline = re.search(r'<script type="text/javascript">.*?</script>', page, re.S)
    assert inline is not None
    blank = page.replace(inline.group(0), '<img src="http://127.0.0.1:9/pixel.png">')
    rendered = render(write(work, "broken", blank), work, screenshot=True)
    assert chart_problems(rendered.dom, "backtest-chart", BACKTEST_TRACES) != []
    assert rendered.page_requests == ["http://127.0.0.1:9/pixel.png"]
    assert rendered.screenshot is not None
    assert colour_counts(rendered.screenshot, {"strategy": STRATEGY})["strategy"][0] < 100
