"""Start-up benchmarks: backend import and time-to-healthy, and the CLI's `--help`.

Each figure is a ratio against a baseline measured in the same run on the same interpreter:
``import ktrdr.api.main`` against bare ``import fastapi``; the backend's first healthy
``/api/v1/health`` against a minimal FastAPI app's first healthy response; ``ktrdr --help``
against ``python -c pass``.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.timing import child_env, median_seconds, python_command, ratio, run_quiet

MINIMAL_APP = "bench.minimal_app:app"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_healthy(app: str, health_path: str, env: dict[str, str], timeout: float = 60.0) -> float:
    """Seconds from spawning ``uvicorn app`` until ``health_path`` first answers 200."""
    port = _free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=child_env(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}{health_path}"
        with httpx.Client(timeout=1.0) as client:
            while time.perf_counter() - start < timeout:
                try:
                    if client.get(url).status_code == 200:
                        return time.perf_counter() - start
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise RuntimeError(f"{app} exited with {proc.returncode} before it was healthy")
                time.sleep(0.005)
        raise TimeoutError(f"{app} not healthy after {timeout} s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(repeat: int = 7) -> dict[str, Any]:
    """Measure every start-up figure; returns seconds and ratios."""
    bare_python = median_seconds(lambda: run_quiet(python_command("pass")), repeat)
    import_fastapi = median_seconds(lambda: run_quiet(python_command("import fastapi")), repeat)
    import_backend = median_seconds(lambda: run_quiet(python_command("import ktrdr.api.main")), repeat)
    ktrdr = str(Path(sys.executable).with_name("ktrdr"))
    cli_help = median_seconds(lambda: run_quiet([ktrdr, "--help"]), repeat)

    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-") as data_dir:
        env = {"KTRDR_DATA_DIR": data_dir, "KTRDR_LOG_LEVEL": "WARNING"}
        health_runs = max(3, repeat // 2)
        time_to_healthy(MINIMAL_APP, "/health", env)  # warm-up: writes the bytecode caches
        minimal_healthy = statistics.median(
            time_to_healthy(MINIMAL_APP, "/health", env) for _ in range(health_runs)
        )
        backend_healthy = statistics.median(
            time_to_healthy("ktrdr.api.main:app", "/api/v1/health", env) for _ in range(health_runs)
        )
    return {
        "python_c_pass_s": bare_python,
        "import_fastapi_s": import_fastapi,
        "import_backend_s": import_backend,
        "import_ratio": ratio(import_backend, import_fastapi),
        "minimal_app_healthy_s": minimal_healthy,
        "backend_healthy_s": backend_healthy,
        "healthy_ratio": ratio(backend_healthy, minimal_healthy),
        "cli_help_s": cli_help,
        "cli_help_ratio": ratio(cli_help, bare_python),
        "repeat": repeat,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
