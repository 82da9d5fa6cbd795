"""`ktrdr ops report`, `--report PATH` and the chart a backtest's result ends with, against a scripted
backend. Runs in the lean environment too: there the report extra is missing, and the CLI says so."""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_servers import scripted_server
from click.testing import CliRunner

from ktrdr.cli import cli
from tests.report.results_factory import backtest_result, operation, training_result

HAS_PLOTLY = importlib.util.find_spec("plotly") is not None
needs_plotly = pytest.mark.skipif(not HAS_PLOTLY, reason="the HTML report needs the report extra (plotly)")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def routes_for(*operations: dict) -> dict:
    return {
        ("GET", f"/api/v1/operations/{op['operation_id']}"): (200, {"success": True, "data": op})
        for op in operations
    }


@needs_plotly
def test_ops_report_writes_one_html_file_for_a_backtest_and_a_training(tmp_path: Path) -> None:
    backtest = operation("backtesting", backtest_result(points=80, trades=4))
    training = operation("training", training_result(epochs=8, best=5))
    with scripted_server(routes_for(backtest, training)) as (base, _):
        done = run(
            "--url", f"{base}/api/v1", "ops", "report", "op_backtesting", "-o", str(tmp_path / "b.html")
        )
        trained = run(
            "--url", f"{base}/api/v1", "ops", "report", "op_training", "-o", str(tmp_path / "t.html")
        )
    assert done.exit_code == 0 and trained.exit_code == 0, done.output + trained.output
    assert "report written to" in done.output and "opens offline" in done.output
    page = (tmp_path / "b.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'id="backtest-chart"' in page
    assert 'id="confusion-matrix"' in (tmp_path / "t.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.html", "t.html"]  # no temporary left


@needs_plotly
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_report_file_gets_the_mode_the_umask_gives_any_new_file(tmp_path: Path, umask: int) -> None:
    backtest = operation("backtesting", backtest_result(points=20, trades=2))
    previous = os.umask(umask)
    try:
        with scripted_server(routes_for(backtest)) as (base, _):
            done = run(
                "--url", f"{base}/api/v1", "ops", "report", "op_backtesting", "-o", str(tmp_path / "b.html")
            )
        (tmp_path / "plain").touch()
    finally:
        os.umask(previous)
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE((tmp_path / "b.html").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "b.html").stat().st_mode) == stat.S_IMODE(
        (tmp_path / "plain").stat().st_mode
    )


@needs_plotly
def test_backtest_with_report_follows_prints_the_summary_and_writes_the_report(tmp_path: Path) -> None:
    finished = operation("backtesting", backtest_result(points=300))
    routes = {
        ("POST", "/api/v1/backtests/start"): (200, {"success": True, "operation_id": "op_backtesting"}),
        **routes_for(finished),
    }
    target = tmp_path / "report.html"
    with scripted_server(routes) as (base, _):
        done = run("--url", f"{base}/api/v1", "backtest", "rsi_macd_trend", "--report", str(target))
    assert done.exit_code == 0, done.output
    # Not a terminal: the chart's text stands in for it.
    assert "equity 100,000 -> 95,000 (-5.0%) from 2024-01-01 to 2024-01-13" in done.output
    assert "deepest drawdown 34.5% on 2024-01-09 18:00 UTC" in done.output
    assert target.is_file() and 'id="backtest-chart"' in target.read_text()


def test_ops_show_ends_a_backtest_with_the_charts_text() -> None:
    shown = operation("backtesting", backtest_result(points=300))
    with scripted_server(routes_for(shown)) as (base, _):
        done = run("--url", f"{base}/api/v1", "ops", "show", "op_backtesting")
    assert done.exit_code == 0, done.output
    assert done.output.rstrip().splitlines()[-2:] == [
        "equity 100,000 -> 95,000 (-5.0%) from 2024-01-01 to 2024-01-13; buy & hold +4.2% (no costs)",
        "deepest drawdown 34.5% on 2024-01-09 18:00 UTC",
    ]


def test_a_failed_or_running_operation_has_no_report_and_nothing_is_written(tmp_path: Path) -> None:
    failed = {**operation("backtesting", None, status="failed"), "operation_id": "op_failed"}
    running = {**operation("training", None, status="running"), "operation_id": "op_running"}
    with scripted_server(routes_for(failed, running)) as (base, _):
        no_result = run(
            "--url", f"{base}/api/v1", "ops", "report", "op_failed", "-o", str(tmp_path / "f.html")
        )
        too_early = run(
            "--url", f"{base}/api/v1", "ops", "report", "op_running", "-o", str(tmp_path / "r.html")
        )
    assert no_result.exit_code == 1 and "op_failed is failed and has no result to report" in no_result.output
    assert too_early.exit_code == 1 and "op_running is still running: wait with --follow" in too_early.output
    assert list(tmp_path.iterdir()) == []


def test_without_the_report_extra_the_cli_says_what_to_install(tmp_path: Path) -> None:
    """As in an environment without the extra (the lean one, or `pip install ktrdr`)."""
    result = json.dumps(operation("backtesting", backtest_result(points=20, trades=1)))
    probe = f"""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("plotly", "plotille"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())

body = json.dumps({{"success": True, "data": json.loads({result!r})}}).encode()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.argv = ["ktrdr", "--url", f"http://127.0.0.1:{{server.server_address[1]}}/api/v1",
            "ops", "report", "op_backtesting", "-o", {str(tmp_path / "x.html")!r}]
from ktrdr.cli import main
main()
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the HTML report needs the 'report' extra (No module named 'plotly')" in done.stderr
    assert "pip install 'ktrdr[report]'" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
