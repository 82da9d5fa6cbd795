"""``ktrdr workers``, ``ktrdr data ...`` and ``ktrdr models ...``: what the backend knows about."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ktrdr.cli.context import cli_context


def _items(answer: Any, *keys: str) -> list[Any]:
    if isinstance(answer, list):
        return answer
    for key in keys:
        if isinstance(answer, dict) and isinstance(answer.get(key), list):
            return list(answer[key])
    return []


@click.command()
@click.option("--type", "worker_type", type=click.Choice(["training", "backtesting"]))
def workers(worker_type: str | None) -> None:
    """List the workers registered with the backend."""
    from ktrdr.cli.output import print_json, print_table

    options = cli_context()
    params = {"worker_type": worker_type} if worker_type else {}
    with options.client() as client:
        items = _items(client.get("/workers", params=params), "workers", "items")
    if options.as_json:
        print_json(items)
        return
    rows = [
        (
            w["worker_id"],
            w["worker_type"],
            w["status"],
            w.get("current_operation_id"),
            (w.get("capabilities") or {}).get("device"),
            w["endpoint_url"],
        )
        for w in items
    ]
    print_table("workers", ["id", "type", "status", "operation", "device", "endpoint"], rows)


@click.group()
def data() -> None:
    """OHLCV datasets ({SYMBOL}_{timeframe}.csv in the data directory)."""


@data.command("list")
def list_data() -> None:
    """List the backend's datasets."""
    from ktrdr.cli.output import print_json, print_table

    options = cli_context()
    with options.client() as client:
        items = _items(client.get("/data"), "datasets", "items")
    if options.as_json:
        print_json(items)
        return
    rows = [(d["symbol"], d["timeframe"], d.get("rows"), d.get("start"), d.get("end")) for d in items]
    print_table("datasets", ["symbol", "timeframe", "rows", "start", "end"], rows)


@data.command("sample")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to install (default: KTRDR_DATA_DIR).",
)
def sample(data_dir: Path | None) -> None:
    """Install the bundled sample datasets into the local data directory (no backend needed)."""
    from ktrdr.data.sample import install_sample_data
    from ktrdr.settings import get_settings

    target = data_dir or get_settings().data_dir
    installed = install_sample_data(target)
    for info in installed:
        click.echo(f"installed {info.symbol} {info.timeframe} into {target}")


@data.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--symbol", required=True, help="Symbol of the dataset, e.g. EURUSD.")
@click.option("--timeframe", required=True, help="Timeframe of the dataset, e.g. 1h.")
@click.option("--overwrite", is_flag=True, help="Replace the dataset if it exists.")
def import_data(file: Path, symbol: str, timeframe: str, overwrite: bool) -> None:
    """Upload a CSV FILE (date, open, high, low, close, volume) to the backend, which validates it."""
    from ktrdr.cli.output import print_json

    options = cli_context()
    with options.client() as client:
        answer = client.post(
            f"/data/{symbol}/{timeframe}",
            params={"overwrite": "true"} if overwrite else {},
            content=file.read_bytes(),
            headers={"content-type": "text/csv"},
        )
    if options.as_json:
        print_json(answer)
        return
    dataset = answer.get("dataset", {}) if isinstance(answer, dict) else {}
    rows = dataset.get("rows")
    click.echo(f"imported {symbol} {timeframe}" + (f": {rows} rows" if rows is not None else ""))


@click.group()
def models() -> None:
    """Trained models ({models_dir}/{strategy}/{timeframe}_v{N})."""


@models.command("list")
def list_models() -> None:
    """List the trained models the backend knows."""
    from ktrdr.cli.output import print_json, print_table

    options = cli_context()
    with options.client() as client:
        items = _items(client.get("/models"), "models", "items")
    if options.as_json:
        print_json(items)
        return
    rows = [
        (
            m["strategy"],
            m["timeframe"],
            m["version"],
            m.get("symbol"),
            "yes" if m.get("is_latest") else "",
            m.get("test_accuracy"),
            m.get("created_at"),
        )
        for m in items
    ]
    columns = ["strategy", "timeframe", "version", "symbol", "latest", "test acc.", "created"]
    print_table("models", columns, rows)
