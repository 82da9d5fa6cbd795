"""The ``ktrdr`` command: a click group that imports each sub-command only when it runs.

Keep this module light: ``ktrdr --help`` imports it and click, and nothing else (no FastAPI,
SQLAlchemy, httpx, rich, numpy, pandas or torch); tests/cli checks that in a subprocess.
"""

from __future__ import annotations

import click

from ktrdr import __version__
from ktrdr.cli.context import CliContext
from ktrdr.cli.lazy import LazyGroup

# name -> ("module:command", one-line help shown by `ktrdr --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("ktrdr.cli.serve:serve", "Run one server: backend, backtest-worker or training-worker."),
    "up": ("ktrdr.cli.up:up", "Run the whole stack locally (backend + one worker of each kind)."),
    "demo": ("ktrdr.cli.demo:demo", "Start a throw-away stack, train and backtest a bundled strategy."),
    "train": ("ktrdr.cli.operations:train", "Train a strategy through the backend."),
    "backtest": ("ktrdr.cli.operations:backtest", "Backtest a trained strategy through the backend."),
    "ops": ("ktrdr.cli.operations:ops", "List, show and cancel operations."),
    "workers": ("ktrdr.cli.resources:workers", "List the workers registered with the backend."),
    "data": ("ktrdr.cli.resources:data", "List, install and import OHLCV datasets."),
    "models": ("ktrdr.cli.resources:models", "List trained models."),
    "strategies": ("ktrdr.cli.strategies:strategies", "Validate strategy files (locally)."),
    "healthcheck": ("ktrdr.cli.healthcheck:healthcheck", "Probe a health URL: exit 0 if healthy, 1 if not."),
    "db": ("ktrdr.cli.db:db", "Manage the operations database (migrations)."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="KTRDR_API_CLIENT_BASE_URL",
    metavar="URL",
    help="Backend API base URL (default http://127.0.0.1:8000/api/v1). Env: KTRDR_API_CLIENT_BASE_URL.",
)
@click.option("--token", envvar="KTRDR_API_TOKEN", metavar="TOKEN", help="Bearer token. Env: KTRDR_API_TOKEN")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.version_option(__version__, prog_name="ktrdr")
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, as_json: bool) -> None:
    """ktrdr: neuro-fuzzy trading research (backend API, training and backtest workers).

    New here? Run `ktrdr demo`.
    """
    ctx.obj = CliContext(url=url, token=token, as_json=as_json)


def main() -> None:
    """Console-script entry point."""
    cli()
