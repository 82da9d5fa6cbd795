"""POST /backtests/start: validate, create the operation, dispatch it to a backtesting worker."""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.schemas import BacktestStartRequest, StartResponse
from ktrdr.api.state import BackendDep
from ktrdr.protocol import BacktestStart, OperationType

router = APIRouter(prefix="/backtests", tags=["backtests"])


@router.post("/start", response_model=StartResponse, responses={503: {"description": "no worker available"}})
async def start_backtest(request: BacktestStartRequest, backend: BackendDep) -> StartResponse:
    """Symbol and timeframe default to the strategy's training data; the model must already exist."""
    from ktrdr.api.run_requests import check_model_available, resolve_run_target, run_params, start_response

    target = resolve_run_target(backend.settings, request.strategy_name, request.symbol, request.timeframe)
    check_model_available(backend.settings, target, request.model_path)
    # What a backtest adds to a run request: stored with the operation and sent to the worker alike.
    costs = request.model_dump(include={"initial_capital", "commission", "slippage", "model_path"})
    params = {**run_params(request, target), **costs}

    def payload(operation_id: str) -> BacktestStart:
        return BacktestStart(
            operation_id=operation_id,
            strategy_yaml=target.strategy_yaml,
            symbol=target.symbol,
            timeframe=target.timeframe,
            start_date=request.start_date,
            end_date=request.end_date,
            **costs,
        )

    operation, worker = await backend.dispatcher.submit(OperationType.BACKTESTING, params, payload)
    return start_response("backtest", request, target, operation, worker)
