"""``ktrdr strategies validate FILE...``: check strategy YAML locally, no backend needed."""

from __future__ import annotations

from pathlib import Path

import click

from ktrdr.cli.context import cli_context


@click.group()
def strategies() -> None:
    """Work with strategy files."""


@strategies.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Validate strategy FILES; exit 1 and list every bad key when one is invalid."""
    import json

    from ktrdr.errors import KtrdrError
    from ktrdr.strategy.loader import load_strategy

    as_json = cli_context().as_json
    results = []
    for path in files:
        try:
            config = load_strategy(path)
        except KtrdrError as exc:
            problems = [_problem(p) for p in exc.details.get("errors", [])] or [exc.message]
            results.append({"file": str(path), "valid": False, "errors": problems})
            if not as_json:
                click.secho(f"{path}: invalid", fg="red", err=True)
                for problem in problems:
                    click.echo(f"  - {problem}", err=True)
        else:
            summary = f"{config.name} ({config.training_data.symbol} {config.training_data.timeframe})"
            results.append({"file": str(path), "valid": True, "name": config.name})
            if not as_json:
                click.echo(f"{path}: valid strategy {summary}")
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if not all(r["valid"] for r in results):
        raise SystemExit(1)


def _problem(problem: object) -> str:
    if isinstance(problem, dict):
        loc, msg = problem.get("loc"), problem.get("msg", "")
        return f"{loc}: {msg}" if loc else str(msg)
    return str(problem)
