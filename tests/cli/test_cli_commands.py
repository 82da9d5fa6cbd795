"""CLI commands that need no running backend, and the API error handling (scripted local server)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_servers import scripted_server
from click.testing import CliRunner

from ktrdr.cli import cli

BUNDLED = Path(__file__).resolve().parents[2] / "ktrdr" / "strategy" / "bundled"


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_strategies_validate_accepts_the_bundled_strategies():
    files = sorted(str(p) for p in BUNDLED.glob("*.yaml"))
    assert files
    result = run("strategies", "validate", *files)
    assert result.exit_code == 0, result.output
    assert result.output.count(": valid strategy") == len(files)


def test_strategies_validate_names_each_bad_key_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    good = next(BUNDLED.glob("*.yaml")).read_text()
    bad.write_text(good.replace("training_data:", "training_data:\n  colour: blue", 1))
    result = run("strategies", "validate", str(bad))
    assert result.exit_code == 1
    assert "invalid" in result.output
    assert "training_data.colour: unknown key" in result.output


def test_strategies_validate_json_output(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    result = run("--json", "strategies", "validate", str(bad))
    assert result.exit_code == 1
    assert '"valid": false' in result.output
    assert "YAML syntax error" in result.output


def test_healthcheck_exit_codes():
    routes = {
        ("GET", "/ok"): (200, {"status": "ok"}),
        ("GET", "/worker"): (200, {"healthy": True, "worker_status": "busy"}),
        ("GET", "/sick"): (200, {"healthy": False}),
        ("GET", "/broken"): (500, {"status": "ok"}),
        ("GET", "/text"): (200, b"fine"),
    }
    with scripted_server(routes) as (base, _):
        assert run("healthcheck", f"{base}/ok").exit_code == 0
        assert run("healthcheck", f"{base}/worker").exit_code == 0
        assert run("healthcheck", f"{base}/sick").exit_code == 1
        assert run("healthcheck", f"{base}/broken").exit_code == 1
        assert run("healthcheck", f"{base}/text").exit_code == 1
        # with no URL: KTRDR_HEALTHCHECK_URL, else the backend's /health under the API base URL
        assert run("healthcheck", env={"KTRDR_HEALTHCHECK_URL": f"{base}/ok"}).exit_code == 0
        with scripted_server({("GET", "/api/v1/health"): (200, {"status": "ok"})}) as (api, seen):
            env = {"KTRDR_HEALTHCHECK_URL": "", "KTRDR_API_CLIENT_BASE_URL": f"{api}/api/v1"}
            assert run("healthcheck", env=env).exit_code == 0
            assert seen[0]["path"] == "/api/v1/health"


def test_healthcheck_unreachable_is_unhealthy():
    with scripted_server({}) as (base, _):
        pass  # the port is now closed
    result = run("healthcheck", "--timeout", "2", f"{base}/health")
    assert result.exit_code == 1
    assert "unhealthy" in result.output


def test_api_error_envelope_is_shown_as_its_message_not_a_traceback():
    envelope = {
        "success": False,
        "error": {"code": "OPERATION_NOT_FOUND", "message": "operation 'op_x' not found", "details": {}},
    }
    with scripted_server({("GET", "/api/v1/operations/op_x"): (404, envelope)}) as (base, _):
        result = CliRunner().invoke(cli, ["--url", f"{base}/api/v1", "ops", "show", "op_x"])
    assert result.exit_code == 1
    assert "operation 'op_x' not found" in result.output
    assert "Traceback" not in result.output


def test_unreachable_backend_is_a_clear_error():
    with scripted_server({}) as (base, _):
        pass
    result = CliRunner().invoke(cli, ["--url", f"{base}/api/v1", "workers"])
    assert result.exit_code == 1
    assert "cannot reach the backend" in result.output


def test_train_sends_the_request_with_token_and_prints_the_operation():
    routes = {("POST", "/api/v1/trainings/start"): (200, {"success": True, "operation_id": "op_7"})}
    with scripted_server(routes) as (base, seen):
        args = ["train", "rsi_macd_trend", "--start", "2024-01-02"]
        result = run("--url", f"{base}/api/v1", "--token", "tkn", *args)
    assert result.exit_code == 0, result.output
    assert "op_7" in result.output
    assert seen[0]["headers"]["Authorization"] == "Bearer tkn"
    assert json.loads(seen[0]["body"]) == {"strategy_name": "rsi_macd_trend", "start_date": "2024-01-02"}


def test_follow_exit_code_reflects_the_outcome():
    failed = {
        "operation_id": "op_9",
        "operation_type": "training",
        "status": "failed",
        "progress": {"percentage": 30.0, "current_step": "epoch 3"},
        "error_message": "worker training-x died",
    }
    routes = {("GET", "/api/v1/operations/op_9"): (200, {"success": True, "data": failed})}
    with scripted_server(routes) as (base, _):
        result = run("--url", f"{base}/api/v1", "ops", "show", "op_9", "--follow")
    assert result.exit_code == 1
    assert "worker training-x died" in result.output


def test_result_rows_put_headline_metrics_first():
    from ktrdr.report.results import result_rows

    metrics = {"win_rate": 0.5, "sharpe_ratio": 1.2, "total_return": 0.1}
    rows = result_rows({"metrics": metrics, "symbol": "EURUSD"})
    assert [name for name, _ in rows] == ["total_return", "sharpe_ratio", "win_rate", "symbol"]


def test_ops_show_says_when_a_backtest_wiped_the_account_out_and_reads_older_results():
    done = {"operation_type": "backtesting", "status": "completed"}
    wiped = {
        **done,
        "operation_id": "op_w",
        "result": {
            "metrics": {"total_return": -2.0},
            "wiped_out": True,
            "wiped_out_bar": 2,
            "wiped_out_at": "2024-01-01T02:00:00+00:00",
        },
    }
    # Stored before backtests recorded whether the account was wiped out.
    older = {**done, "operation_id": "op_o", "result": {"metrics": {"total_return": 0.1}, "bars": 10}}
    routes = {
        ("GET", f"/api/v1/operations/{op['operation_id']}"): (200, {"success": True, "data": op})
        for op in (wiped, older)
    }
    with scripted_server(routes) as (base, _):
        shown = run("--url", f"{base}/api/v1", "ops", "show", "op_w")
        old = run("--url", f"{base}/api/v1", "ops", "show", "op_o")
    assert shown.exit_code == 0 and old.exit_code == 0, shown.output + old.output
    text = " ".join(shown.output.split())  # rich wraps long lines at the terminal's width
    assert "account wiped out at bar 2 (2024-01-01T02:00:00+00:00)" in text
    assert "total_return" in old.output and "wiped" not in old.output


@pytest.mark.parametrize("role", ["backtest-worker", "training-worker"])
def test_serve_worker_without_the_ml_extra_fails_fast_with_a_clear_message(role):
    # Simulate the backend image: numpy, pandas and torch cannot be imported.
    probe = f"""
import sys
class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("numpy", "pandas", "torch"):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
sys.argv = ["ktrdr", "serve", "{role}", "--port", "1"]
from ktrdr.cli import main
main()
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{role} needs the 'ml' extra: No module named 'numpy'" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_upgrade_creates_the_sqlite_schema(tmp_path):
    db_file = tmp_path / "ops.db"
    result = run("db", "upgrade", "--db-url", f"sqlite+aiosqlite:///{db_file}")
    assert result.exit_code == 0, result.output
    assert db_file.exists()
    import sqlite3

    query = "select name from sqlite_master where type='table'"
    tables = {r[0] for r in sqlite3.connect(db_file).execute(query)}
    assert "operations" in tables


def test_demo_backtests_only_the_test_split() -> None:
    from ktrdr.cli.demo import backtest_request

    trained = {"test_start": "2021-05-04T13:00:00+00:00"}
    assert backtest_request("s", trained) == {"strategy_name": "s", "start_date": "2021-05-04"}
    # A strategy trained with no test split has no unseen bars: the backtest then takes its defaults.
    assert backtest_request("s", {"test_start": None}) == {"strategy_name": "s"}
