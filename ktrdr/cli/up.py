"""``ktrdr up``: the whole stack on this machine with the embedded defaults (SQLite, sample data)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType

import click


class _Stop(Exception):
    pass


def _raise_stop(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (default: KTRDR_DATA_DIR).",
)
@click.option("--port", type=int, help="Backend port (default: KTRDR_API_PORT, 8000).")
@click.option("--backtest-port", type=int, default=5003, show_default=True)
@click.option("--training-port", type=int, default=5004, show_default=True)
@click.option("--no-sample-data", is_flag=True, help="Do not install the bundled sample datasets.")
def up(
    data_dir: Path | None, port: int | None, backtest_port: int, training_port: int, no_sample_data: bool
) -> None:
    """Run the backend and one worker of each kind on 127.0.0.1 until Ctrl-C (or SIGTERM)."""
    from ktrdr.cli.stack import LocalStack, StackPorts
    from ktrdr.settings import get_settings

    settings = get_settings()
    data_dir = (data_dir or settings.data_dir).expanduser().resolve()
    if not no_sample_data:
        from ktrdr.data.sample import install_sample_data

        for info in install_sample_data(data_dir):
            click.echo(f"installed sample data {info.symbol} {info.timeframe}")
    ports = StackPorts(port or settings.api_port, backtest_port, training_port)
    stack = LocalStack(data_dir, ports)
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        stack.start()
        stack.wait_ready()
        click.secho(f"ktrdr is up: {stack.api_url}  (API docs: {stack.api_url}/docs)", fg="green", err=True)
        click.echo(f"data: {data_dir}; stop with Ctrl-C", err=True)
        while not stack.exited():
            time.sleep(0.5)
        click.secho(f"a server stopped unexpectedly: {stack.exited()}; stopping the rest", fg="red", err=True)
        raise SystemExit(1)
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping...", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack.stop()
    click.echo("stopped", err=True)
