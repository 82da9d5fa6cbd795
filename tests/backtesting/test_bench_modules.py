"""The throughput benchmarks run and report what they promise (tiny sizes; no timing asserted)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("pandas")


def test_backtest_throughput_reports_each_phase() -> None:
    import torch

    from bench import backtest_throughput

    threads = torch.get_num_threads()
    try:
        report = backtest_throughput.run(sizes=(3000,), repeat=1)
    finally:
        torch.set_num_threads(threads)
    assert report["hardware"]["torch_threads"] == 1
    figures = report["sizes"]["3000"]
    assert figures["bars"] == 3000 and figures["trades"] > 0
    assert set(figures["bars_per_second"]) == {"total", "features", "inference", "simulation"}
    assert all(v > 0 for v in figures["bars_per_second"].values())


def test_training_throughput_reports_samples_per_second() -> None:
    import torch

    from bench import training_throughput

    threads = torch.get_num_threads()
    try:
        report = training_throughput.run(n_bars=3000, epochs=2, repeat=1)
    finally:
        torch.set_num_threads(threads)
    assert report["epochs"] == 2 and report["samples"]["train"] > 1000
    assert report["train_samples_per_second"] > 0
