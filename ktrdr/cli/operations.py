"""``ktrdr train`` / ``ktrdr backtest`` / ``ktrdr ops``: start, follow, inspect, report and cancel operations.

``--follow`` polls the operation and draws a live progress bar until it ends; the exit code says
how it ended: 0 completed, 1 failed, 2 cancelled. A backtest's result ends with its terminal chart
(:mod:`ktrdr.report.terminal`); ``ktrdr ops report`` and ``--report PATH`` write the operation's
self-contained HTML report (:mod:`ktrdr.report.html`, the ``report`` extra).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from ktrdr.cli.context import cli_context

TERMINAL = {"completed", "failed", "cancelled"}
EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 2}
POLL_S = 0.5


def _date_option(name: str, help_text: str) -> Any:
    return click.option(name, type=click.DateTime(["%Y-%m-%d"]), help=help_text)


def _report_option() -> Any:
    return click.option(
        "--report",
        "report_path",
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        help="When it ends, write its HTML report to this file (implies --follow; the 'report' extra).",
    )


def _iso(value: dt.datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def _drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


@click.command()
@click.argument("strategy")
@click.option("--symbol", help="Override the strategy's training symbol.")
@click.option("--timeframe", help="Override the strategy's training timeframe.")
@_date_option("--start", "First day of data (YYYY-MM-DD).")
@_date_option("--end", "Last day of data (YYYY-MM-DD).")
@click.option("--follow", "-f", is_flag=True, help="Show live progress until the operation ends.")
@_report_option()
def train(
    strategy: str,
    symbol: str | None,
    timeframe: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    follow: bool,
    report_path: Path | None,
) -> None:
    """Train STRATEGY (a strategy name known to the backend)."""
    body = _drop_none(
        {
            "strategy_name": strategy,
            "symbol": symbol,
            "timeframe": timeframe,
            "start_date": _iso(start),
            "end_date": _iso(end),
        }
    )
    _start_operation("/trainings/start", body, follow, report_path)


@click.command()
@click.argument("strategy")
@click.option("--symbol", help="Symbol to backtest (default: the strategy's).")
@click.option("--timeframe", help="Timeframe to backtest (default: the strategy's).")
@_date_option("--start", "First day of the backtest (YYYY-MM-DD).")
@_date_option("--end", "Last day of the backtest (YYYY-MM-DD).")
@click.option("--model", "model_path", help="Model to use (default: the newest of the strategy).")
@click.option("--capital", type=float, help="Initial capital (default 100000).")
@click.option("--commission", type=float, help="Commission per trade, as a fraction (default 0.001).")
@click.option("--slippage", type=float, help="Slippage, as a fraction (default 0.0005).")
@click.option("--follow", "-f", is_flag=True, help="Show live progress until the operation ends.")
@_report_option()
def backtest(
    strategy: str,
    symbol: str | None,
    timeframe: str | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    model_path: str | None,
    capital: float | None,
    commission: float | None,
    slippage: float | None,
    follow: bool,
    report_path: Path | None,
) -> None:
    """Backtest STRATEGY with its trained model."""
    body = _drop_none(
        {
            "strategy_name": strategy,
            "symbol": symbol,
            "timeframe": timeframe,
            "start_date": _iso(start),
            "end_date": _iso(end),
            "model_path": model_path,
            "initial_capital": capital,
            "commission": commission,
            "slippage": slippage,
        }
    )
    _start_operation("/backtests/start", body, follow, report_path)


def _start_operation(path: str, body: dict[str, Any], follow: bool, report_path: Path | None) -> None:
    options = cli_context()
    with options.client() as client:
        started = client.post(path, json=body)
        operation_id = str(started["operation_id"])
        if not follow and report_path is None:
            if options.as_json:
                from ktrdr.cli.output import print_json

                print_json(started)
            else:
                click.echo(f"started {operation_id}  (follow it: ktrdr ops show {operation_id} --follow)")
            return
        operation = follow_operation(client, operation_id, quiet=options.as_json)
    show_operation(operation, as_json=options.as_json)
    _report_if_asked(operation, report_path)
    raise SystemExit(EXIT_CODES.get(operation["status"], 1))


def _report_if_asked(operation: dict[str, Any], report_path: Path | None) -> None:
    """After following an operation: its report when one was asked for and it has a result; a
    failed or cancelled one says why there is none (its exit code already tells how it ended)."""
    if report_path is None:
        return
    if not operation.get("result"):
        from ktrdr.cli.output import err_console

        err_console.print(f"no report: operation {operation['operation_id']} is {operation['status']}")
        return
    write_report(operation, report_path)


def _umask() -> int:
    current = os.umask(0o022)  # the only way to read it is to set it (and put it back at once)
    os.umask(current)
    return current


def write_report(operation: dict[str, Any], path: Path) -> None:
    """Write the operation's HTML report to ``path`` whole (a temporary file renamed into place)."""
    from ktrdr.cli.output import err_console
    from ktrdr.errors import KtrdrError
    from ktrdr.report.html import operation_report

    try:
        page = operation_report(operation)
    except KtrdrError as exc:
        raise click.ClickException(exc.message) from None
    target = path.expanduser()
    staging: str | None = None
    try:
        handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        # mkstemp makes the file 0600; a report is an ordinary file, so it gets what open() would.
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.replace(staging, target)
    except OSError as exc:
        if staging is not None:
            Path(staging).unlink(missing_ok=True)
        raise click.ClickException(f"cannot write the report to {target}: {exc}") from None
    err_console.print(f"report written to {target} ({target.stat().st_size / 1e6:.1f} MB); it opens offline")


def follow_operation(client: Any, operation_id: str, *, quiet: bool = False, label: str | None = None) -> Any:
    """Poll until the operation ends, drawing a progress bar unless ``quiet``; return the final state."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from ktrdr.cli.output import err_console

    columns = (
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=err_console, disable=quiet, transient=False) as bar:
        task = bar.add_task("pending", total=100.0, label=label or operation_id)
        while True:
            operation = client.get(f"/operations/{operation_id}")
            progress = operation.get("progress") or {}
            step = progress.get("current_step") or operation["status"]
            bar.update(task, completed=float(progress.get("percentage") or 0.0), description=step)
            if operation["status"] in TERMINAL:
                if operation["status"] == "completed":
                    bar.update(task, completed=100.0)
                return operation
            time.sleep(POLL_S)


def show_operation(operation: dict[str, Any], *, as_json: bool) -> None:
    from ktrdr.cli.output import console, print_json, print_table
    from ktrdr.report.results import result_rows, wiped_out_line

    if as_json:
        print_json(operation)
        return
    status = operation["status"]
    colour = {"completed": "green", "failed": "red", "cancelled": "yellow"}.get(status, "cyan")
    kind = operation.get("operation_type", "operation")
    console.print(f"[bold]{kind}[/] {operation['operation_id']}: [{colour}]{status}[/]")
    if operation.get("error_message"):
        console.print(f"  reason: {operation['error_message']}")
    result = operation.get("result") or {}
    if result:
        rows = result_rows(result)
        if rows:
            print_table("result", ["metric", "value"], rows)
        if line := wiped_out_line(result):
            console.print(line, style="bold red", markup=False)
        if operation.get("operation_type") == "backtesting":
            from ktrdr.report.terminal import print_backtest_chart

            print_backtest_chart(console, result)


@click.group()
def ops() -> None:
    """List, show and cancel operations."""


@ops.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "completed", "failed", "cancelled"]))
@click.option("--type", "operation_type", type=click.Choice(["training", "backtesting"]))
@click.option("--limit", type=int, default=20, show_default=True)
def list_operations(status: str | None, operation_type: str | None, limit: int) -> None:
    """List recent operations, newest first."""
    from ktrdr.cli.output import print_json, print_table

    options = cli_context()
    params = _drop_none({"status": status, "operation_type": operation_type, "limit": limit})
    with options.client() as client:
        answer = client.get("/operations", params=params)
    items = answer if isinstance(answer, list) else answer.get("items", answer.get("operations", []))
    if options.as_json:
        print_json(items)
        return
    rows = [
        (
            op["operation_id"],
            op.get("operation_type"),
            op["status"],
            f"{(op.get('progress') or {}).get('percentage', 0):.0f}%",
            op.get("worker_id"),
            op.get("created_at"),
        )
        for op in items
    ]
    print_table("operations", ["id", "type", "status", "progress", "worker", "created"], rows)


@ops.command("show")
@click.argument("operation_id")
@click.option("--follow", "-f", is_flag=True, help="Show live progress until the operation ends.")
def show(operation_id: str, follow: bool) -> None:
    """Show one operation (with --follow: until it ends; the exit code says how)."""
    options = cli_context()
    operation = _fetch(options, operation_id, follow)
    show_operation(operation, as_json=options.as_json)
    if follow:
        raise SystemExit(EXIT_CODES.get(operation["status"], 1))


@ops.command("report")
@click.argument("operation_id")
@click.option(
    "--output",
    "-o",
    "path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The HTML file to write (default: ktrdr-report-OPERATION_ID.html here).",
)
@click.option("--follow", "-f", is_flag=True, help="Wait for a running operation to end first.")
def report(operation_id: str, path: Path | None, follow: bool) -> None:
    """Write one self-contained HTML report of a finished operation: charts, tables and what
    produced it (needs the 'report' extra; the file opens offline)."""
    operation = _fetch(cli_context(), operation_id, follow)
    if operation["status"] not in TERMINAL:
        raise click.ClickException(
            f"operation {operation_id} is still {operation['status']}: wait with --follow, or report it later"
        )
    write_report(operation, path or Path(f"ktrdr-report-{operation_id}.html"))


def _fetch(options: Any, operation_id: str, follow: bool) -> dict[str, Any]:
    """The operation now, or (``follow``) once it has ended."""
    with options.client() as client:
        if follow:
            operation: dict[str, Any] = follow_operation(client, operation_id, quiet=options.as_json)
        else:
            operation = client.get(f"/operations/{operation_id}")
    return operation


@ops.command("cancel")
@click.argument("operation_id")
@click.option("--reason", default="cancelled from the CLI", show_default=True)
def cancel(operation_id: str, reason: str) -> None:
    """Cancel a pending or running operation."""
    options = cli_context()
    with options.client() as client:
        operation = client.delete(f"/operations/{operation_id}", params={"reason": reason})
    if isinstance(operation, dict) and "status" in operation:
        show_operation(operation, as_json=options.as_json)
    else:
        click.echo(f"cancel requested for {operation_id}")
