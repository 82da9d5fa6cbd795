"""`ktrdr up` brings the stack up on the given ports and SIGTERM (like Ctrl-C) stops all of it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_up_serves_the_stack_and_stops_it_cleanly(tmp_path):
    pytest.importorskip("torch")
    from ktrdr.cli.stack import free_ports

    backend, backtest, training = free_ports(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env["KTRDR_WORKER_HEALTH_CHECK_INTERVAL"] = "0.5"
    command = [sys.executable, "-m", "ktrdr", "up", "--data-dir", str(tmp_path / "data")]
    command += ["--port", str(backend), "--backtest-port", str(backtest), "--training-port", str(training)]
    up = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert up.stderr is not None
        deadline = time.monotonic() + 120
        seen = []
        while time.monotonic() < deadline:
            line = up.stderr.readline()
            seen.append(line)
            if "ktrdr is up" in line or up.poll() is not None:
                break
        assert any("ktrdr is up" in line for line in seen), "".join(seen)

        workers = httpx.get(f"http://127.0.0.1:{backend}/api/v1/workers", timeout=5).json()
        assert {w["worker_type"] for w in workers} == {"training", "backtesting"}
        assert (tmp_path / "data" / "EURUSD_1h.csv").exists()
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0
    assert not any(_port_open(p) for p in (backend, backtest, training))
