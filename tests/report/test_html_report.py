"""The self-contained HTML report, read as HTML: sections, charts' traces, escaping, older results."""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from results_factory import (
    BACKTEST_TRACES,
    TRAINING_TRACES,
    backtest_result,
    damaged_operations,
    older_backtest_result,
    older_training_result,
    operation,
    training_result,
)

from ktrdr.errors import KtrdrError, MissingDependencyError, ValidationError

pytest.importorskip("plotly", reason="the HTML report needs the report extra")

from ktrdr.report.html import operation_report


class Page(HTMLParser):
    """Every tag's attributes, the text of each element with an id, and the scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text_by_id: dict[str, str] = {}
        self._open: list[str | None] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag not in {"meta", "br", "img", "link"}:
            self._open.append(dict(attrs).get("id"))
            if self._open[-1]:
                self.text_by_id[self._open[-1]] = ""

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)
        for ident in filter(None, self._open):
            self.text_by_id[ident] += data


def outside_references(page: Page) -> list[str]:
    """Every src/href that would make the browser fetch something (anything but a fragment or data:)."""
    found = []
    for _tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "action", "poster", "data"):
            value = (attrs.get(name) or "").strip()
            if value and not value.startswith(("#", "data:")):
                found.append(f"{name}={value}")
    return found


def trace_names(page: Page, div_id: str) -> list[str]:
    """The names of the traces plotly is asked to draw in ``div_id`` (the data of its newPlot call)."""
    script = next(s for s in page.scripts if f'"{div_id}"' in s and "Plotly.newPlot" in s)
    data = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",\s*(\[.*?\]),\s*\{', script, re.S)
    assert data, script[:300]
    return [trace.get("name") for trace in json.loads(data.group(1))]


def report(kind: str, result: dict[str, Any]) -> tuple[str, Page]:
    text = operation_report(operation(kind, result))
    return text, Page(text)


def test_a_backtest_page_has_its_charts_tables_and_provenance_and_loads_nothing() -> None:
    text, page = report("backtesting", backtest_result())
    assert outside_references(page) == []
    # plotly.js inlined once, before the figures.
    assert sum("Plotly.newPlot" not in s and len(s) > 1_000_000 for s in page.scripts) == 1
    assert trace_names(page, "backtest-chart") == BACKTEST_TRACES
    assert text.count("<tr>") >= 12 + 1 and "trade 11 (short)" in text
    provenance = page.text_by_id["provenance"]
    for expected in ("ab" * 32, "model version3", "commission0.1 %", "slippage0.05 %", "op_backtesting"):
        assert expected in provenance
    assert "test split from 2023-06-01" in provenance
    assert "total_return-5.00%" in page.text_by_id["metrics"]
    assert "buy_and_hold_return" in page.text_by_id["metrics"]


def test_an_older_backtest_gets_the_charts_it_can_and_says_what_is_missing() -> None:
    text, page = report("backtesting", older_backtest_result())
    assert trace_names(page, "backtest-chart") == ["strategy", "drawdown"]
    assert "predates the buy-and-hold curve" in text
    assert "predates the stored prices" in text
    assert "evenly spaced sample" in text
    assert "strategy YAML SHA-256not recorded" in page.text_by_id["provenance"]


def test_a_training_page_has_the_curves_per_epoch_and_the_confusion_matrix() -> None:
    text, page = report("training", training_result(epochs=30, best=21))
    assert outside_references(page) == []
    assert trace_names(page, "training-curves") == TRAINING_TRACES
    assert trace_names(page, "confusion-matrix") == ["confusion matrix"]
    assert '"z":[[106,122,36],[38,615,188],[22,181,487]]' in text
    assert "best epoch 21" in text
    assert "cd" * 32 in page.text_by_id["provenance"]


def test_an_older_training_page_says_what_it_lacks() -> None:
    text, page = report("training", older_training_result())
    assert "predates the per-epoch history" in text and "predates the stored confusion matrix" in text
    assert not [s for s in page.scripts if "Plotly.newPlot" in s]


def test_text_from_the_result_is_escaped() -> None:
    hostile = backtest_result(points=20, trades=2)
    hostile["strategy"] = "<script>alert(1)</script>"
    hostile["trades"][0]["exit_reason"] = '<img src="https://example.invalid/x.png">'
    text, page = report("backtesting", hostile)
    assert "<script>alert(1)" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert outside_references(page) == []


def test_an_operation_without_a_result_has_no_report() -> None:
    with pytest.raises(ValidationError, match="op_backtesting is failed and has no result to report"):
        operation_report(operation("backtesting", None, status="failed"))
    with pytest.raises(ValidationError, match="no report for operations of type 'mystery'"):
        operation_report(operation("mystery", {"a": 1}))


def test_without_the_extra_the_report_says_what_to_install(monkeypatch) -> None:
    for name in [n for n in sys.modules if n == "plotly" or n.startswith("plotly.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(
        MissingDependencyError, match=r"the HTML report needs the 'report' extra .*ktrdr\[report\]"
    ):
        operation_report(operation("backtesting", backtest_result(points=20, trades=1)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_operations())
def test_any_damaged_result_gives_a_page_or_a_clear_error(op: dict[str, Any]) -> None:
    try:
        text = operation_report(op)
    except KtrdrError:
        return
    assert text.startswith("<!DOCTYPE html>") and outside_references(Page(text)) == []


def test_a_wiped_out_backtest_says_so_and_marks_the_bar_on_the_chart() -> None:
    result = backtest_result()
    wiped_at = result["curves"]["timestamps"][300]
    result |= {"wiped_out": True, "wiped_out_bar": 300, "wiped_out_at": wiped_at}
    text, page = report("backtesting", result)
    assert f"account wiped out at bar 300 ({wiped_at})" in text
    assert '<p class="alert">account wiped out' in text
    chart = next(s for s in page.scripts if "Plotly.newPlot" in s and "backtest-chart" in s)
    assert '"dash":"dot"' in chart.replace(" ", "")

    text, page = report("backtesting", backtest_result())
    assert "wiped out" not in text
    chart = next(s for s in page.scripts if "Plotly.newPlot" in s and "backtest-chart" in s)
    assert '"dash":"dot"' not in chart.replace(" ", "")
