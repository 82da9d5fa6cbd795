"""Checks shared by the training and backtest start routes, done before anything is written.

A start request names a strategy (looked up in the user's strategies directory, then the bundled
ones) and optionally a symbol and timeframe (defaulting to the strategy's ``training_data``). The
dataset must exist in the data directory, which the backend shares with its workers (one
directory for ``ktrdr up``, a shared volume in a deployment); the strategy travels to the worker
as YAML text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ktrdr.api.schemas import RunRequest, StartResponse
from ktrdr.control.models import Operation
from ktrdr.data.catalog import dataset_info
from ktrdr.protocol import WorkerInfo
from ktrdr.settings import Settings
from ktrdr.strategy.loader import find_strategy_file, read_strategy
from ktrdr.strategy.schema import StrategyConfig
from ktrdr.training.model_storage import model_path_within, resolve_model_path


@dataclass(frozen=True)
class RunTarget:
    strategy: StrategyConfig
    strategy_yaml: str
    symbol: str
    timeframe: str


def resolve_run_target(
    settings: Settings, strategy_name: str, symbol: str | None, timeframe: str | None
) -> RunTarget:
    """The strategy, its YAML and the dataset a run will use; 4xx errors name what is wrong."""
    # One read: the YAML the worker gets is the text validated here.
    strategy, strategy_yaml = read_strategy(
        find_strategy_file(strategy_name, settings.resolved_strategies_dir)
    )
    # Both already passed ktrdr.names: the request's in its schema, the strategy's in StrategyConfig.
    symbol = symbol or strategy.training_data.symbol
    timeframe = timeframe or strategy.training_data.timeframe
    dataset_info(settings.data_dir, symbol, timeframe)
    return RunTarget(strategy, strategy_yaml, symbol, timeframe)


def check_model_available(settings: Settings, target: RunTarget, model_path: str | None) -> None:
    """The model a backtest will load exists (the given path inside the models directory, or the
    strategy's latest model for the timeframe)."""
    if model_path is not None:
        model_path_within(settings.resolved_models_dir, model_path)
    else:
        resolve_model_path(settings.resolved_models_dir, target.strategy.name, target.timeframe)


def run_params(request: RunRequest, target: RunTarget) -> dict[str, Any]:
    """The operation's stored ``params`` every run has (a route adds its own)."""
    return {
        "strategy_name": request.strategy_name,
        "symbol": target.symbol,
        "timeframe": target.timeframe,
        "start_date": request.start_date.isoformat() if request.start_date else None,
        "end_date": request.end_date.isoformat() if request.end_date else None,
    }


def start_response(
    what: str, request: RunRequest, target: RunTarget, operation: Operation, worker: WorkerInfo
) -> StartResponse:
    """The answer to a dispatched start request; ``what`` names the run in the message."""
    return StartResponse(
        operation_id=operation.operation_id,
        task_id=operation.operation_id,
        operation_type=operation.operation_type,
        status=operation.status.value,
        message=f"{what} of {request.strategy_name} started on {worker.worker_id}",
        strategy_name=request.strategy_name,
        symbol=target.symbol,
        timeframe=target.timeframe,
        worker_id=worker.worker_id,
    )
