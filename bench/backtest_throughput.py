"""Backtest throughput: bars per second for features + inference + simulation, and per phase.

Runs the engine's in-memory pipeline (``ktrdr.backtesting.engine.backtest_frame``) over synthetic
hourly bars from ``ktrdr.data.sample.generate_ohlcv`` with the bundled ``rsi_macd_trend`` strategy
(shorts allowed) and a fixed network whose outputs are sharp enough to trade. torch is pinned to
one thread (``torch.set_num_threads(1)``) so the figure is per core. Loading the CSV and the model
from disk is not included. Each figure is the median of ``repeat`` runs after one warm-up run.

    uv run --frozen python -m bench.backtest_throughput
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.timing import median_seconds

GOAL_BARS_PER_SECOND = 200_000


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """What a compute figure was measured on: CPU, cores, torch threads, library versions."""
    import numpy
    import pandas
    import torch

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
    }


def _model(strategy: Any, ohlcv: Any) -> Any:
    import torch

    from ktrdr.features import Normalizer, build_features, feature_names
    from ktrdr.neural.mlp import build_mlp
    from ktrdr.training.model_storage import LoadedModel

    torch.manual_seed(5)
    names = feature_names(strategy)
    network = build_mlp(len(names), strategy.model.architecture)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.mul_(4.0)
    network.eval()
    normalizer = Normalizer.fit(build_features(strategy, ohlcv.iloc[:5000]).dropna())
    metadata = {"feature_names": names, "normalization": normalizer.to_dict()}
    return LoadedModel(network=network, metadata=metadata, path=Path("(in memory)"))


def measure(strategy: Any, n: int, repeat: int) -> dict[str, Any]:
    """Median seconds and bars/s of each phase and of the whole pipeline over ``n`` bars."""
    import numpy as np

    from ktrdr.backtesting.decisions import decide
    from ktrdr.backtesting.engine import backtest_frame
    from ktrdr.backtesting.positions import Costs, simulate
    from ktrdr.data.sample import generate_ohlcv
    from ktrdr.features import Normalizer, build_features, feature_names
    from ktrdr.neural.mlp import predict_proba

    names = feature_names(strategy)
    costs = Costs()
    ohlcv = generate_ohlcv(n, timeframe="1h", seed=13)
    model = _model(strategy, ohlcv)
    normalizer = Normalizer.from_dict(model.metadata["normalization"])
    open_, close = ohlcv["open"].to_numpy(), ohlcv["close"].to_numpy()

    def features() -> np.ndarray:
        frame = normalizer.transform(build_features(strategy, ohlcv)[names])
        return np.asarray(frame, dtype=np.float32)

    matrix = features()
    valid = np.isfinite(matrix).all(axis=1)
    matrix[~valid] = 0.0
    probabilities = predict_proba(model.network, matrix)

    def simulation() -> None:
        simulate(decide(probabilities, valid, strategy.decisions), open_, close, ohlcv.index, costs)

    last: dict[str, Any] = {}

    def end_to_end() -> None:
        last["result"] = backtest_frame(strategy, ohlcv, model, costs)

    seconds = {
        "total": median_seconds(end_to_end, repeat),
        "features": median_seconds(features, repeat),
        "inference": median_seconds(lambda: predict_proba(model.network, matrix), repeat),
        "simulation": median_seconds(simulation, repeat),
    }
    return {
        "bars": n,
        "trades": len(last["result"].simulation.trades),
        "seconds": {k: round(v, 5) for k, v in seconds.items()},
        "bars_per_second": {k: round(n / v) for k, v in seconds.items()},
    }


def run(sizes: Sequence[int] = (100_000, 1_000_000), repeat: int = 3, threads: int = 1) -> dict[str, Any]:
    """Bars/s end to end and per phase for each size in ``sizes``, torch on ``threads`` threads."""
    import torch

    from ktrdr.strategy.loader import get_strategy

    torch.set_num_threads(threads)
    base, _ = get_strategy("rsi_macd_trend")
    strategy = base.model_copy(update={"decisions": base.decisions.model_copy(update={"allow_short": True})})
    results = {str(n): measure(strategy, n, repeat) for n in sizes}
    first = results[str(sizes[0])]["bars_per_second"]["total"]
    return {
        "benchmark": "backtest_throughput",
        "hardware": hardware(),
        "goal_bars_per_second": GOAL_BARS_PER_SECOND,
        "goal_ratio": round(first / GOAL_BARS_PER_SECOND, 2),
        "sizes": results,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
