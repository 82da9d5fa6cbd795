"""The training worker (``ktrdr serve training-worker``, port 5004): trains strategies on request.

The strategy arrives as YAML in the start request; OHLCV comes from this worker's
``KTRDR_DATA_DIR`` and the trained model is written under its ``KTRDR_MODELS_DIR`` (a volume the
backtest worker shares). The worker advertises its device (CUDA, MPS or CPU) as capabilities so
the backend prefers GPU workers for training. torch loads at start-up (the dependency check and
the device probe), not at import.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request

from ktrdr.jobs import CancelToken, ProgressCallback
from ktrdr.protocol import StartAccepted, TrainingStart, WorkerType
from ktrdr.settings import DEFAULT_PORTS, Settings
from ktrdr.worker.app import create_worker_app, start_strategy_operation
from ktrdr.worker.deps_check import check_ml_dependencies

if TYPE_CHECKING:
    from ktrdr.strategy.schema import StrategyConfig

SERVICE = "training-worker"


def _capabilities() -> dict[str, Any]:
    from ktrdr.training.device import device_capabilities

    return device_capabilities()


def train(
    request: TrainingStart,
    strategy: StrategyConfig,
    settings: Settings,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> dict[str, Any]:
    """Apply the request's overrides to the parsed strategy and train it (in the worker's compute thread)."""
    from ktrdr.training.device import best_device
    from ktrdr.training.trainer import train_strategy

    overrides = {k: v for k, v in (("symbol", request.symbol), ("timeframe", request.timeframe)) if v}
    if overrides:
        training_data = strategy.training_data.model_copy(update=overrides)
        strategy = strategy.model_copy(update={"training_data": training_data})
    result = train_strategy(
        strategy,
        data_dir=settings.data_dir,
        models_dir=settings.resolved_models_dir,
        start=request.start_date,
        end=request.end_date,
        progress=progress,
        cancel=cancel,
        device=best_device(),
    )
    return result.to_dict()


def create_app(**options: Any) -> FastAPI:
    """The training worker; ``options`` go to :func:`create_worker_app` (tests pass settings)."""
    app = create_worker_app(
        worker_type=WorkerType.TRAINING,
        service=SERVICE,
        default_port=DEFAULT_PORTS[SERVICE],
        capabilities=_capabilities,
        check_dependencies=functools.partial(check_ml_dependencies, SERVICE),
        **options,
    )

    @app.post("/training/start")
    async def start_training(body: TrainingStart, request: Request) -> StartAccepted:
        """Accept a training operation; 503 while another operation runs, 422 for an invalid strategy."""
        return start_strategy_operation(request, body, functools.partial(train, body))

    return app


app = create_app()
