"""One command for every benchmark: ``uv run python -m bench`` prints a table and writes JSON.

Each figure is compared with a baseline or goal measured or stated in the same run:
  startup   import and time-to-healthy of the backend vs bare FastAPI; ``ktrdr --help`` vs ``python -c pass``
  backtest  bars/s (features + inference + simulation) at 10k, 100k and 1M bars, one core; linearity
  training  samples/s on the CPU
  demo      the end-to-end demo's wall time by phase
  sizes     installed and download bytes per image role vs the original system's images; each image's
            estimate by layer (bench.estimate) against its budget, and what an app-only release re-pushes

``--quick`` runs tiny inputs (the smoke test uses it); figures from it mean nothing. Each section
runs in a fresh interpreter, so one section's state (torch threads, caches, memory) cannot skew another.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECTIONS = ("startup", "backtest", "training", "demo", "sizes")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "latest.json"


def _startup(quick: bool) -> dict[str, Any]:
    from bench import startup

    return startup.run(repeat=2 if quick else 9)


def _backtest(quick: bool) -> dict[str, Any]:
    from bench import backtest_throughput

    sizes = (2_000, 20_000) if quick else (10_000, 100_000, 1_000_000)
    result = backtest_throughput.run(sizes=sizes, repeat=1 if quick else 3)
    seconds = {int(n): r["seconds"]["total"] for n, r in result["sizes"].items()}
    small, large = min(seconds), max(seconds)
    # 1.0 = perfectly linear; above 1 the per-bar cost grows with the series length.
    result["per_bar_cost_ratio_largest_vs_smallest"] = round(
        (seconds[large] / large) / (seconds[small] / small), 2
    )
    return result


def _training(quick: bool) -> dict[str, Any]:
    from bench import training_throughput

    if quick:
        return training_throughput.run(n_bars=3_000, epochs=1, repeat=1)
    return training_throughput.run()


def _demo(quick: bool) -> dict[str, Any]:
    from bench import demo_phases

    return demo_phases.run()


def _sizes(quick: bool) -> dict[str, Any]:
    from bench import sizes

    return sizes.run(install=not quick)


RUNNERS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "startup": _startup,
    "backtest": _backtest,
    "training": _training,
    "demo": _demo,
    "sizes": _sizes,
}


def run_isolated(section: str, quick: bool) -> dict[str, Any]:
    """Run one section in a child interpreter and return its JSON result."""
    argv = [sys.executable, "-m", "bench", "--child", section] + (["--quick"] if quick else [])
    child = subprocess.run(argv, capture_output=True, text=True)
    lines = child.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"bench section {section} failed ({child.returncode}):\n{child.stderr}") from None
    if child.returncode != 0:
        # PyPI's CUDA torch build can crash while the interpreter tears down, after the work is done.
        print(f"note: {section} exited {child.returncode} after reporting its result", file=sys.stderr)
    return result


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(figure, measured, goal or baseline) rows for the printed table."""
    out: list[tuple[str, str, str]] = []
    if s := results.get("startup"):
        out += [
            ("import ktrdr.api.main / import fastapi", f"{s['import_ratio']:.2f}x", "<= 1.3x"),
            ("backend healthy / minimal FastAPI healthy", f"{s['healthy_ratio']:.2f}x", "<= 1.5x"),
            ("backend time to healthy", f"{s['backend_healthy_s']:.2f} s", "original: 3.2 s"),
            ("ktrdr --help / python -c pass", f"{s['cli_help_ratio']:.1f}x", "<= 8x"),
        ]
    if b := results.get("backtest"):
        for n, r in b["sizes"].items():
            out.append(
                (
                    f"backtest {int(n):,} bars, 1 core",
                    f"{r['bars_per_second']['total']:,} bars/s",
                    ">= 200,000",
                )
            )
        out.append(
            (
                "per-bar cost, largest / smallest series",
                f"{b['per_bar_cost_ratio_largest_vs_smallest']}",
                "1.0 = linear",
            )
        )
    if t := results.get("training"):
        out.append(("training on the CPU, 1 thread", f"{t['train_samples_per_second']:,} samples/s", ""))
    if d := results.get("demo"):
        p = d["phases"]
        phases = ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in p.items() if k != "total_s")
        out.append(("ktrdr demo end to end", f"{p['total_s']:.1f} s ({phases})", ""))
    if z := results.get("sizes"):
        for name, e in z.get("estimates", {}).items():
            layers = ", ".join(f"{k} {v:,.1f}" for k, v in e["layers_mb"].items() if v)
            out.append(
                (
                    f"{name} image estimate (x86_64, MB by layer)",
                    f"{e['image_mb']:,.1f} MB: {layers}",
                    f"budget {e['budget_mb']:,} MB" + (" — OVER" if e["image_mb"] > e["budget_mb"] else ""),
                )
            )
            out.append(
                (
                    f"{name} app-only release re-pushes (ktrdr + venv)",
                    f"{e['app_mb']:.2f} MB",
                    f"budget {e['app_budget_mb']} MB"
                    + (" — OVER" if e["app_mb"] > e["app_budget_mb"] else ""),
                )
            )
        for name, r in z["roles"].items():
            installed = (
                r.get("installed_pruned_stripped_mb") or r.get("installed_pruned_mb") or r.get("installed_mb")
            )
            shown = f"{installed:,.0f} MB installed, " if installed else ""
            shown += ", ".join(f"{arch} {mb:,.0f} MB download" for arch, mb in r["download_mb"].items())
            out.append((f"{name} Python packages", shown, f"original image: {r['original_image_mb']:,} MB"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--quick", action="store_true", help="tiny inputs: checks the benchmarks run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON results")
    parser.add_argument("--child", choices=SECTIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(RUNNERS[args.child](args.quick)))
        return 0
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {SECTIONS}")

    results: dict[str, Any] = {
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "quick": args.quick,
    }
    for section in chosen:
        print(f"running {section}...", flush=True)
        results[section] = run_isolated(section, args.quick)

    from rich.console import Console
    from rich.table import Table

    table = Table(title="ktrdr benchmarks" + (" (quick: figures mean nothing)" if args.quick else ""))
    table.add_column("figure", no_wrap=True)
    table.add_column("measured")
    table.add_column("goal / baseline")
    for row in rows(results):
        table.add_row(*row)
    Console().print(table)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
