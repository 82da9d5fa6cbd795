"""Small timing helpers shared by the benchmarks: medians of repeated subprocess runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def median_seconds(fn: Callable[[], None], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``fn`` (one warm-up call first)."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for measured child processes: like ours, but with bytecode caching on.

    The images ship bytecode compiled in the store; a child that had to recompile every module
    on each start (PYTHONDONTWRITEBYTECODE set) would measure the compiler, not the import.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def run_quiet(argv: Sequence[str], env: dict[str, str] | None = None) -> None:
    """Run a command to completion, discarding output; raise if it fails."""
    subprocess.run(
        list(argv), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env(env)
    )


def python_command(code: str) -> list[str]:
    """A ``python -c`` command line for this interpreter (the project's environment)."""
    return [sys.executable, "-c", code]


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("inf")
