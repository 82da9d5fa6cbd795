"""`ktrdr demo` works from any directory with no set-up and ends with a metrics table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_demo_from_another_directory_prints_metrics_and_exits_0(tmp_path):
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env["KTRDR_DATA_DIR"] = str(tmp_path / "must-not-be-used")  # the demo keeps to its own temp dir
    env["COLUMNS"] = "120"
    done = subprocess.run(
        [sys.executable, "-m", "ktrdr", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sharpe_ratio" in done.stdout
    assert "max_drawdown" in done.stdout
    assert "demo finished" in done.stdout
    # The backtest covers only the bars the model never saw (its test split).
    assert "out of sample" in done.stdout
    assert not (tmp_path / "must-not-be-used").exists()
    assert os.listdir(tmp_path) == []
