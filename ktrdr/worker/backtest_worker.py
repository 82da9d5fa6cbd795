"""The backtest worker (``ktrdr serve backtest-worker``, port 5003): backtests trained models on request.

The strategy arrives as YAML in the start request; OHLCV comes from this worker's
``KTRDR_DATA_DIR`` and the model from its ``KTRDR_MODELS_DIR`` (shared with the training worker).
Inference runs on the CPU. torch loads at start-up (the dependency check), not at import.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request

from ktrdr.jobs import CancelToken, ProgressCallback
from ktrdr.protocol import BacktestStart, StartAccepted, WorkerType
from ktrdr.settings import DEFAULT_PORTS, Settings
from ktrdr.worker.app import create_worker_app, start_strategy_operation
from ktrdr.worker.deps_check import check_ml_dependencies

if TYPE_CHECKING:
    from ktrdr.strategy.schema import StrategyConfig

SERVICE = "backtest-worker"


def backtest(
    request: BacktestStart,
    strategy: StrategyConfig,
    settings: Settings,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> dict[str, Any]:
    """Run the backtest of the request's (parsed) strategy (runs in the worker's compute thread)."""
    from ktrdr.backtesting.engine import BacktestConfig, run_backtest

    config = BacktestConfig(
        strategy=strategy,
        symbol=request.symbol,
        timeframe=request.timeframe,
        start_date=request.start_date,
        end_date=request.end_date,
        initial_capital=request.initial_capital,
        commission=request.commission,
        slippage=request.slippage,
        model_path=Path(request.model_path) if request.model_path else None,
    )
    result = run_backtest(
        config,
        data_dir=settings.data_dir,
        models_dir=settings.resolved_models_dir,
        progress=progress,
        cancel=cancel,
    )
    return result.to_dict()


def create_app(**options: Any) -> FastAPI:
    """The backtest worker; ``options`` go to :func:`create_worker_app` (tests pass settings)."""
    app = create_worker_app(
        worker_type=WorkerType.BACKTESTING,
        service=SERVICE,
        default_port=DEFAULT_PORTS[SERVICE],
        capabilities=lambda: {"device": "cpu", "gpu": False},
        check_dependencies=functools.partial(check_ml_dependencies, SERVICE),
        **options,
    )

    @app.post("/backtests/start")
    async def start_backtest(body: BacktestStart, request: Request) -> StartAccepted:
        """Accept a backtest operation; 503 while another operation runs, 422 for an invalid strategy."""
        return start_strategy_operation(request, body, functools.partial(backtest, body))

    return app


app = create_app()
