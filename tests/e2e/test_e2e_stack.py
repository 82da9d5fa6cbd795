"""End to end with real processes: train then backtest, progress, cancel, backend restart, worker death."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner
from e2e_helpers import AUTH, HEALTH_INTERVAL_S, logs_of, wait_for_operation

from ktrdr.cli import cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TERMINAL = {"completed", "failed", "cancelled"}


def _start(api, kind: str, body: dict) -> str:
    answer = api.post(f"/{kind}/start", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["operation_id"]


def _training_is_running(api, strategy: str = "e2e_endless") -> tuple[str, dict]:
    """Start the endless training and wait until it reports epochs (progress past data preparation)."""
    operation_id = _start(api, "trainings", {"strategy_name": strategy})
    running = wait_for_operation(
        api,
        operation_id,
        lambda op: op["status"] == "running" and op["progress"]["steps_completed"] >= 1,
        60,
        "training reports its first epoch",
    )
    return operation_id, running


def test_train_then_backtest_through_the_api(stack, api, tmp_path):
    operation_id = _start(api, "trainings", {"strategy_name": "e2e_quick"})
    trained = wait_for_operation(api, operation_id, lambda op: op["status"] in TERMINAL, 120, "training ends")
    assert trained["status"] == "completed", (trained, logs_of(stack))
    assert trained["progress"]["percentage"] == 100.0
    assert trained["result"]["strategy"] == "e2e_quick"
    assert trained["result"]["epochs_run"] == 2
    assert 0.0 <= trained["result"]["test_metrics"]["accuracy"] <= 1.0

    models = api.get("/models").json()["models"]
    assert any(m["strategy"] == "e2e_quick" and m["is_latest"] for m in models)

    backtest_id = _start(api, "backtests", {"strategy_name": "e2e_quick"})
    tested = wait_for_operation(api, backtest_id, lambda op: op["status"] in TERMINAL, 60, "backtest ends")
    assert tested["status"] == "completed", (tested, logs_of(stack))
    result = tested["result"]
    assert result["symbol"] == "EURUSD" and result["timeframe"] == "1h"
    assert result["bars"] > 1000
    assert {"sharpe_ratio", "max_drawdown", "total_return"} <= set(result["metrics"])
    assert tested["worker_id"].startswith("backtesting-")

    # What the charts need came through the backend's store, with what produced it.
    yaml_text = (stack.data_dir / "strategies" / "e2e_quick.yaml").read_text()
    digest = hashlib.sha256(yaml_text.encode()).hexdigest()
    assert result["strategy_yaml_sha256"] == trained["result"]["strategy_yaml_sha256"] == digest
    assert result["model"]["version"] == trained["result"]["version"]
    assert 2 <= result["curves"]["points"] <= 1000 and result["curves"]["bars"] == result["bars"]
    assert trained["result"]["history"]["epoch"] == [1, 2]
    assert len(trained["result"]["test_metrics"]["confusion_matrix"]) == 3
    if importlib.util.find_spec("plotly"):
        for operation, chart in ((backtest_id, "backtest-chart"), (operation_id, "confusion-matrix")):
            target = tmp_path / f"{operation}.html"
            args = ["--url", stack.api_url, "ops", "report", operation, "-o", str(target)]
            done = CliRunner().invoke(cli, args)
            assert done.exit_code == 0, done.output
            assert f'id="{chart}"' in target.read_text()

    listed = {op["operation_id"] for op in api.get("/operations", params={"limit": 50}).json()["data"]}
    assert {operation_id, backtest_id} <= listed


def test_cancel_reaches_the_worker_and_both_sides_agree(stack, api):
    operation_id, running = _training_is_running(api)
    assert running["progress"]["current_step"].startswith("epoch ")

    answer = api.delete(f"/operations/{operation_id}", params={"reason": "e2e says stop"})
    assert answer.status_code == 200, answer.text
    cancelled = wait_for_operation(api, operation_id, lambda op: op["status"] in TERMINAL, 30, "cancel lands")
    assert cancelled["status"] == "cancelled"

    worker_url = f"http://127.0.0.1:{stack.ports.training_worker}"
    on_worker = httpx.get(f"{worker_url}/api/v1/operations/{operation_id}", headers=AUTH, timeout=5).json()
    assert on_worker["status"] == "cancelled"
    health = httpx.get(f"{worker_url}/health", timeout=5).json()
    assert health["worker_status"] == "idle"


def test_workers_answer_only_the_token_except_for_health(stack, api):
    for port in (stack.ports.training_worker, stack.ports.backtest_worker):
        worker_url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{worker_url}/health", timeout=5).status_code == 200
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            for method, path in (("GET", "/api/v1/operations"), ("DELETE", "/api/v1/operations/op_x/cancel")):
                answer = httpx.request(method, worker_url + path, headers=headers, timeout=5)
                assert answer.status_code == 401, (method, path, answer.text)
        assert httpx.get(f"{worker_url}/api/v1/operations", headers=AUTH, timeout=5).status_code == 200
    # ...and the backend, which holds the same token, still reaches both of them.
    assert {w["status"] for w in api.get("/workers").json()} == {"available"}
    # Its polls carry the token, so the workers tell them from the probes above (and the
    # healthchecks): none has gone unpolled long enough to register again.
    for role in ("training-worker", "backtest-worker"):
        log = (stack.log_dir / f"{role}.log").read_text(errors="replace")
        assert "worker.registered" in log and "worker.not_polled" not in log, log[-3000:]


def test_a_worker_with_a_wrong_token_says_so_and_keeps_retrying(stack, api, tmp_path):
    from ktrdr.cli.stack import free_ports

    (port,) = free_ports(1)
    env = stack.environment("backtest-worker")
    env.update(
        {"KTRDR_API_TOKEN": "not-the-backends", "KTRDR_WORKER_PORT": str(port), "KTRDR_WORKER_ID": "intruder"}
    )
    log_path = tmp_path / "intruder.log"
    command = [sys.executable, "-m", "ktrdr", "serve", "backtest-worker", "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        intruder = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while log_path.read_text(errors="replace").count("worker.token_refused") < 3:
            assert intruder.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        assert intruder.poll() is None, "a refused worker keeps running and retrying"
        assert "KTRDR_API_TOKEN" in log_path.read_text(errors="replace")
        assert "intruder" not in {w["worker_id"] for w in api.get("/workers").json()}
    finally:
        intruder.terminate()
        intruder.wait(30)


def test_backend_restart_mid_operation_loses_nothing(stack, api):
    operation_id, running = _training_is_running(api)
    epochs_before = running["progress"]["steps_completed"]

    assert stack.stop_role("backend") is not None
    stack.start_role("backend")
    stack.wait_ready(timeout=60, idle=False)

    # Reconciled with its worker: still running and still progressing (never lost, never failed).
    resumed = wait_for_operation(
        api,
        operation_id,
        lambda op: op["progress"]["steps_completed"] > epochs_before or op["status"] in TERMINAL,
        60,
        "progress continues after the restart",
    )
    assert resumed["status"] == "running", (resumed, logs_of(stack))

    api.delete(f"/operations/{operation_id}", params={"reason": "end of test"})
    wait_for_operation(api, operation_id, lambda op: op["status"] == "cancelled", 30, "cleanup cancel")


def test_sigterm_stops_the_worker_cleanly_and_reports_the_operation(stack, api):
    operation_id, _ = _training_is_running(api)

    # uvicorn re-raises the signal once its shutdown is complete, so a clean exit reads -SIGTERM here.
    code = stack.stop_role("training-worker", budget_s=30)
    assert code in (0, -signal.SIGTERM), logs_of(stack)
    assert "worker.stopped" in stack.log_tail("training-worker"), "shutdown hooks ran to the end"
    # The worker pushed its final status before exiting, so the backend knows at once why.
    stopped = api.get(f"/operations/{operation_id}").json()["data"]
    assert stopped["status"] == "failed", (stopped, logs_of(stack))
    assert "SIGTERM" in stopped["error_message"]

    stack.start_role("training-worker")
    stack.wait_ready(timeout=60)


def test_killed_worker_fails_its_operation_with_a_reason(stack, api):
    operation_id, running = _training_is_running(api)
    worker_id = running["worker_id"]

    process = stack.processes["training-worker"]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    killed_at = time.monotonic()

    # Three failed health checks mark the worker lost; the bound adds slack for a loaded machine.
    bound = 3 * HEALTH_INTERVAL_S + 20
    failed = wait_for_operation(api, operation_id, lambda op: op["status"] in TERMINAL, bound, "loss noticed")
    assert failed["status"] == "failed"
    assert failed["error_message"], "a failed operation must say why"
    assert worker_id in failed["error_message"] or "worker" in failed["error_message"].lower()
    print(f"operation failed {time.monotonic() - killed_at:.1f} s after the worker was killed")
    # Keep this test last in the module: it leaves the stack without a training worker.
