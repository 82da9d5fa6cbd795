"""End-to-end wall time of the demo, split into phases: start-up, training, backtest, shut-down.

Runs what ``ktrdr demo`` runs (the three servers as subprocesses on loopback, the bundled sample
data in a temporary directory, everything through the API) and times each phase.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ktrdr.cli.client import ApiClient
from ktrdr.cli.demo import backtest_request, throwaway_stack
from ktrdr.cli.operations import follow_operation

DEFAULT_STRATEGY = "rsi_macd_trend"


def _operation(client: ApiClient, path: str, request: dict[str, Any]) -> dict[str, Any]:
    started = client.post(path, json=request)
    operation: dict[str, Any] = follow_operation(client, started["operation_id"], quiet=True)
    if operation["status"] != "completed":
        raise RuntimeError(f"{path} ended {operation['status']}: {operation.get('error_message')}")
    return operation


def run(strategy: str = DEFAULT_STRATEGY) -> dict[str, Any]:
    phases: dict[str, float] = {}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-demo-") as tmp:
        stack = throwaway_stack(Path(tmp), {"KTRDR_LOG_LEVEL": "WARNING"})
        try:
            t = time.perf_counter()
            stack.start()
            stack.wait_ready()
            phases["startup_s"] = time.perf_counter() - t
            with ApiClient(stack.api_url) as client:
                t = time.perf_counter()
                training = _operation(client, "/trainings/start", {"strategy_name": strategy})
                phases["training_s"] = time.perf_counter() - t
                t = time.perf_counter()
                request = backtest_request(strategy, training.get("result") or {})
                backtest = _operation(client, "/backtests/start", request)
                phases["backtest_s"] = time.perf_counter() - t
        finally:
            t = time.perf_counter()
            stack.stop()
            phases["shutdown_s"] = time.perf_counter() - t
    phases["total_s"] = time.perf_counter() - began
    metrics = (backtest.get("result") or {}).get("metrics") or {}
    return {
        "strategy": strategy,
        "phases": phases,
        "test_accuracy": ((training.get("result") or {}).get("test_metrics") or {}).get("accuracy"),
        "sharpe_ratio": metrics.get("sharpe_ratio"),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
