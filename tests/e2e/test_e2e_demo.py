"""`ktrdr demo` works from any directory with no set-up and ends with a metrics table and a chart,
also when the package is read-only (as in the Nix store, where `nix run .#demo` runs it)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PACKAGE = Path(__file__).resolve().parents[2] / "ktrdr"


def read_only_copy(root: Path) -> Path:
    """The ktrdr package copied under ``root`` with every write bit removed."""
    shutil.copytree(PACKAGE, root / "ktrdr", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [root / "ktrdr", *(root / "ktrdr").rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return root


def test_demo_from_a_read_only_install_prints_metrics_and_a_chart_and_exits_0(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("plotille", reason="the demo's chart needs the report extra")
    installed = read_only_copy(tmp_path / "store")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KTRDR_")}
    env["KTRDR_DATA_DIR"] = str(tmp_path / "must-not-be-used")  # the demo keeps to its own temp dir
    env["PYTHONPATH"] = str(installed)
    # A terminal of 120 x 40 as far as the output is concerned (rich reads these).
    env.update({"TTY_COMPATIBLE": "1", "COLUMNS": "120", "LINES": "40", "NO_COLOR": "1"})
    where = subprocess.run(
        [sys.executable, "-c", "import ktrdr; print(ktrdr.__file__)"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip() == str(installed / "ktrdr" / "__init__.py")
    done = subprocess.run(
        [sys.executable, "-m", "ktrdr", "demo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sharpe_ratio" in done.stdout
        assert "max_drawdown" in done.stdout
        assert "demo finished" in done.stdout
        # The backtest covers only the bars the model never saw (its test split).
        assert "out of sample" in done.stdout
        # The chart, sized to the 120 columns: both panels, drawn in braille dots.
        chart = [line for line in done.stdout.splitlines() if "\u2800" <= line[13:14] <= "\u28ff"]
        assert len(chart) >= 8 and max(len(line) for line in chart) <= 120
        assert "(equity)" in done.stdout and "(drawdown)" in done.stdout
        assert not (tmp_path / "must-not-be-used").exists()
        assert os.listdir(cwd) == []
    finally:
        for path in [installed, *installed.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
