"""Training throughput on the CPU: samples per second through the training loop.

Trains the bundled ``rsi_macd_trend`` strategy's network (its batch size and architecture) on
synthetic hourly bars, with torch pinned to one thread (``torch.set_num_threads(1)``; the trainer
uses one intra-op thread on the CPU anyway). Reported: dataset preparation (features, labels,
split, normalisation) in bars/s and the optimisation loop in training samples/s (samples x
epochs / seconds, validation pass included). One warm-up epoch runs first so torch's one-off
start-up is not counted; early stopping is off so every run does the same epochs.

    uv run --frozen python -m bench.training_throughput
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any


def run(n_bars: int = 50_000, epochs: int = 5, repeat: int = 3, threads: int = 1) -> dict[str, Any]:
    import torch

    from bench.backtest_throughput import hardware
    from ktrdr.data.sample import generate_ohlcv
    from ktrdr.jobs import CancelToken
    from ktrdr.strategy.loader import get_strategy
    from ktrdr.training.dataset import dataset_from_ohlcv
    from ktrdr.training.trainer import fit

    torch.set_num_threads(threads)
    base, _ = get_strategy("rsi_macd_trend")
    no_stop = base.training.early_stopping.model_copy(update={"patience": epochs + 1})
    strategy = base.model_copy(
        update={"training": base.training.model_copy(update={"epochs": epochs, "early_stopping": no_stop})}
    )
    ohlcv = generate_ohlcv(n_bars, timeframe="1h", seed=17)

    prep: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        data = dataset_from_ohlcv(strategy, ohlcv)
        prep.append(time.perf_counter() - start)

    warm = strategy.model_copy(update={"training": strategy.training.model_copy(update={"epochs": 1})})
    fit(warm, data, device="cpu", progress=lambda _p: None, cancel=CancelToken())
    loop: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = fit(strategy, data, device="cpu", progress=lambda _p: None, cancel=CancelToken())
        loop.append(time.perf_counter() - start)
    train_rows = data.sizes()["train"]
    seconds = statistics.median(loop)
    return {
        "benchmark": "training_throughput",
        "hardware": hardware(),
        "bars": n_bars,
        "samples": data.sizes(),
        "features": len(data.feature_names),
        "batch_size": strategy.training.batch_size,
        "epochs": outcome.epochs_run,
        "prepare_seconds": round(statistics.median(prep), 4),
        "prepare_bars_per_second": round(n_bars / statistics.median(prep)),
        "fit_seconds": round(seconds, 4),
        "train_samples_per_second": round(train_rows * outcome.epochs_run / seconds),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
