"""The benchmarks run end to end on tiny inputs and write their JSON (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("pandas")

from bench.__main__ import main


def test_bench_runs_quick_and_writes_every_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "startup,backtest,training,sizes", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["quick"] is True
    assert results["startup"]["import_ratio"] > 0
    assert results["startup"]["cli_help_ratio"] > 0
    for size in results["backtest"]["sizes"].values():
        assert size["bars_per_second"]["total"] > 0
    assert results["backtest"]["per_bar_cost_ratio_largest_vs_smallest"] > 0
    assert results["training"]["train_samples_per_second"] > 0
    roles = results["sizes"]["roles"]
    assert set(roles) == {"backend", "worker-cpu", "worker-gpu"}
    assert roles["backend"]["download_mb"]["x86_64"] < roles["worker-gpu"]["download_mb"]["x86_64"]
    estimates = results["sizes"]["estimates"]
    assert set(estimates) == {"backend", "worker-cpu", "worker-gpu"}
    for estimate in estimates.values():
        assert set(estimate["layers_mb"]) == {"base", "common", "ml", "torch", "extras", "app"}
        assert estimate["image_mb"] > estimate["app_mb"] > 0
    printed = capsys.readouterr().out
    assert "ktrdr --help / python -c pass" in printed and "backtest" in printed
    assert "app-only release re-pushes" in printed


def test_bench_rejects_unknown_sections(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--only", "nope", "--out", str(tmp_path / "x.json")])
    assert exc.value.code == 2
