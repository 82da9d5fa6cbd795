"""``ktrdr demo``: a throw-away stack that trains a bundled strategy and backtests it.

No set-up and no network: the sample data ships in the package, the stack runs on free loopback
ports in a temporary directory that is deleted afterwards, and everything goes through the API
exactly as a user's own runs would.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ktrdr.report.results import HEADLINE_METRICS

if TYPE_CHECKING:
    from ktrdr.cli.stack import LocalStack

DEFAULT_STRATEGY = "rsi_macd_trend"
# The demo's table: the headline metrics every backtest summary starts with, and the bar count.
SHOWN = (*HEADLINE_METRICS, "bars")


@click.command()
@click.option("--strategy", default=DEFAULT_STRATEGY, show_default=True, help="Bundled strategy to run.")
def demo(strategy: str) -> None:
    """Start a temporary stack, train STRATEGY on the sample data, backtest it, print its metrics
    and its equity chart."""
    from ktrdr.cli.client import ApiClient
    from ktrdr.cli.output import console, err_console, print_table
    from ktrdr.report.results import result_rows
    from ktrdr.report.terminal import print_backtest_chart

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ktrdr-demo-") as tmp:
        stack = throwaway_stack(Path(tmp), {"KTRDR_LOG_FORMAT": "console"})
        with stack:
            with err_console.status("starting the backend and two workers on 127.0.0.1..."):
                stack.start()
                stack.wait_ready()
            err_console.print(f"[green]stack ready[/] at {stack.api_url}")
            with ApiClient(stack.api_url) as client:
                training = _run(client, "/trainings/start", {"strategy_name": strategy}, "training", stack)
                trained = training.get("result") or {}
                _print_training(trained)
                request = backtest_request(strategy, trained)
                backtest = _run(client, "/backtests/start", request, "backtest", stack)
            result = backtest.get("result") or {}
            rows = [row for row in result_rows(result) if row[0] in SHOWN]
            since = f", out of sample from {request['start_date']}" if "start_date" in request else ""
            print_table(f"backtest of {strategy} on the sample data{since}", ["metric", "value"], rows)
            print_backtest_chart(console, result)
            err_console.print("stopping the stack...")
    console.print(f"[green]demo finished[/] in {time.monotonic() - began:.1f} s")


def backtest_request(strategy: str, training_result: dict[str, Any]) -> dict[str, Any]:
    """The demo's backtest: only the bars the model never trained or validated on (its test split)."""
    request: dict[str, Any] = {"strategy_name": strategy}
    if test_start := training_result.get("test_start"):
        request["start_date"] = str(test_start)[:10]
    return request


def throwaway_stack(root: Path, env: dict[str, str] | None = None) -> LocalStack:
    """A stack (not yet started) on free loopback ports, with the sample data under ``root``.

    It ignores the user's ``KTRDR_*`` settings; ``env`` adds to its own.
    """
    from ktrdr.cli.stack import LocalStack, StackPorts, free_ports
    from ktrdr.data.sample import install_sample_data

    install_sample_data(root / "data")
    return LocalStack(
        root / "data",
        StackPorts(*free_ports(3)),
        log_dir=root / "logs",
        env={"KTRDR_WORKER_HEALTH_CHECK_INTERVAL": "1.0", **(env or {})},
        isolated=True,
    )


def _run(client: Any, path: str, body: dict[str, Any], label: str, stack: Any) -> dict[str, Any]:
    from ktrdr.cli.operations import follow_operation

    started = client.post(path, json=body)
    operation: dict[str, Any] = follow_operation(client, started["operation_id"], label=label)
    if operation["status"] != "completed":
        logs = "\n".join(f"--- {role} ---\n{stack.log_tail(role)}" for role in stack.processes)
        raise click.ClickException(
            f"{label} {operation['status']}: {operation.get('error_message') or 'no reason given'}\n{logs}"
        )
    return operation


def _print_training(result: dict[str, Any]) -> None:
    from ktrdr.cli.output import console

    accuracy = (result.get("test_metrics") or {}).get("accuracy")
    summary = f"trained {result.get('strategy', '')} v{result.get('version', '?')}"
    summary += f" on {result.get('device', '?')} in {result.get('epochs_run', '?')} epochs"
    if isinstance(accuracy, float):
        summary += f"; test accuracy {accuracy:.1%}"
    console.print(summary)
