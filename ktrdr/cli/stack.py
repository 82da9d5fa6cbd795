"""The whole system as local processes: the backend and one worker of each kind on 127.0.0.1.

Used by ``ktrdr up`` (long-running, on the usual ports) and ``ktrdr demo`` (throw-away, on free
ports in a temporary directory). Each server is ``python -m ktrdr serve ROLE`` in its own session,
so a Ctrl-C reaches only this process, which then stops the children in order: SIGTERM (each
worker stops its operation and reports it), then SIGKILL for any that outlive the budget.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click
import httpx

ROLES = ("backend", "training-worker", "backtest-worker")
WORKER_TYPES = {"training-worker": "training", "backtest-worker": "backtesting"}
# Variables that would point a child at something other than this stack.
_FOREIGN_ENV = (
    "KTRDR_WORKER_PORT",
    "KTRDR_WORKER_PUBLIC_BASE_URL",
    "KTRDR_HEALTHCHECK_URL",
    "KTRDR_API_CLIENT_BASE_URL",
)


class StackError(click.ClickException):
    """The stack did not come up (the message carries the end of the failing server's log)."""


@dataclass(frozen=True)
class StackPorts:
    backend: int
    backtest_worker: int
    training_worker: int

    def for_role(self, role: str) -> int:
        return {
            "backend": self.backend,
            "backtest-worker": self.backtest_worker,
            "training-worker": self.training_worker,
        }[role]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class LocalStack:
    """Start, wait for, and stop the three servers (use as a context manager)."""

    def __init__(
        self,
        data_dir: Path,
        ports: StackPorts,
        *,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        isolated: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.log_dir = log_dir
        self.extra_env = env or {}
        self.isolated = isolated  # ignore the user's KTRDR_* settings entirely (the demo)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.backend}/api/v1"

    def environment(self, role: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not (self.isolated and k.startswith("KTRDR_"))}
        for name in _FOREIGN_ENV:
            env.pop(name, None)
        env.update(
            {
                "KTRDR_DATA_DIR": str(self.data_dir),
                "KTRDR_API_CLIENT_BASE_URL": self.api_url,
                "KTRDR_API_HOST": "127.0.0.1",
                "KTRDR_API_PORT": str(self.ports.backend),
                "KTRDR_WORKER_HOST": "127.0.0.1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if role != "backend":
            env["KTRDR_WORKER_PORT"] = str(self.ports.for_role(role))
            # A stable id: a restarted worker replaces its old registration instead of adding one.
            env["KTRDR_WORKER_ID"] = self.worker_id(role)
        env.update(self.extra_env)
        return env

    def worker_id(self, role: str) -> str:
        return f"{WORKER_TYPES[role]}-local-{self.ports.for_role(role)}"

    def start(self) -> None:
        for role in ROLES:
            self.start_role(role)

    def start_role(self, role: str) -> subprocess.Popen[bytes]:
        """(Re)start one server; the e2e tests use it to restart the backend."""
        port = self.ports.for_role(role)
        command = [sys.executable, "-m", "ktrdr", "serve", role, "--host", "127.0.0.1", "--port", str(port)]
        output: IO[bytes] | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{role}.log").open("ab")
            self._logs.append(output)
        self.processes[role] = subprocess.Popen(
            command,
            env=self.environment(role),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        return self.processes[role]

    def log_tail(self, role: str, lines: int = 25) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"{role}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def exited(self) -> dict[str, int]:
        """Servers that have stopped, with their exit codes."""
        return {role: p.returncode for role, p in self.processes.items() if p.poll() is not None}

    def _check_alive(self) -> None:
        for role, code in self.exited().items():
            tail = self.log_tail(role)
            raise StackError(f"{role} exited with code {code}" + (f":\n{tail}" if tail else ""))

    def wait_ready(self, timeout: float = 120.0, *, idle: bool = True) -> None:
        """Wait until the backend is healthy and each worker answers and is registered (and idle).

        Asking each worker process itself, not only the backend, keeps a restarted worker's stale
        registration from passing for the new process.
        """
        accepted = {"available"} if idle else {"available", "busy"}
        deadline = time.monotonic() + timeout
        workers = [r for r in self.processes if r in WORKER_TYPES]
        with httpx.Client(timeout=2.0) as client:
            while True:
                self._check_alive()
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    if self._ready(client, workers, accepted):
                        return
                if time.monotonic() > deadline:
                    raise StackError(f"the stack was not ready within {timeout:.0f} s (logs: {self.log_dir})")
                time.sleep(0.2)

    def _ready(self, client: httpx.Client, workers: list[str], accepted: set[str]) -> bool:
        if client.get(f"{self.api_url}/health").status_code != 200:
            return False
        registered = {w["worker_id"]: w["status"] for w in client.get(f"{self.api_url}/workers").json()}
        for role in workers:
            health = client.get(f"http://127.0.0.1:{self.ports.for_role(role)}/health")
            if health.status_code != 200 or health.json()["worker_id"] != self.worker_id(role):
                return False
            if registered.get(self.worker_id(role)) not in accepted:
                return False
        return True

    def stop_role(self, role: str, budget_s: float = 25.0) -> int | None:
        process = self.processes.get(role)
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(budget_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop(self, budget_s: float = 25.0) -> None:
        """Workers first (they report their final status to the backend), then the backend."""
        for role in ("training-worker", "backtest-worker"):
            process = self.processes.get(role)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for role in ("training-worker", "backtest-worker", "backend"):
            self.stop_role(role, budget_s)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
