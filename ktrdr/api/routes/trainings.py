"""POST /trainings/start: validate, create the operation, dispatch it to a training worker."""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.schemas import StartResponse, TrainingStartRequest
from ktrdr.api.state import BackendDep
from ktrdr.workers.protocol import OperationType, TrainingStart

router = APIRouter(prefix="/trainings", tags=["trainings"])


@router.post("/start", response_model=StartResponse, responses={503: {"description": "no worker available"}})
async def start_training(request: TrainingStartRequest, backend: BackendDep) -> StartResponse:
    """Prefers GPU-capable workers, then the least recently used idle one."""
    from ktrdr.api.run_requests import resolve_run_target

    target = resolve_run_target(backend.settings, request.strategy_name, request.symbol, request.timeframe)
    params = {
        "strategy_name": request.strategy_name,
        "symbol": target.symbol,
        "timeframe": target.timeframe,
        "start_date": request.start_date.isoformat() if request.start_date else None,
        "end_date": request.end_date.isoformat() if request.end_date else None,
    }

    def payload(operation_id: str) -> TrainingStart:
        return TrainingStart(
            operation_id=operation_id,
            strategy_yaml=target.strategy_yaml,
            symbol=target.symbol,
            timeframe=target.timeframe,
            start_date=request.start_date,
            end_date=request.end_date,
        )

    operation, worker = await backend.dispatcher.submit(
        OperationType.TRAINING, params, payload, prefer_gpu=True
    )
    return StartResponse(
        operation_id=operation.operation_id,
        task_id=operation.operation_id,
        operation_type=operation.operation_type,
        status=operation.status.value,
        message=f"training of {request.strategy_name} started on {worker.worker_id}",
        strategy_name=request.strategy_name,
        symbol=target.symbol,
        timeframe=target.timeframe,
        worker_id=worker.worker_id,
    )
