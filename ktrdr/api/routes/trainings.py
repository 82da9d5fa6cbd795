"""POST /trainings/start: validate, create the operation, dispatch it to a training worker."""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.schemas import StartResponse, TrainingStartRequest
from ktrdr.api.state import BackendDep
from ktrdr.protocol import OperationType, TrainingStart

router = APIRouter(prefix="/trainings", tags=["trainings"])


@router.post("/start", response_model=StartResponse, responses={503: {"description": "no worker available"}})
async def start_training(request: TrainingStartRequest, backend: BackendDep) -> StartResponse:
    """Prefers GPU-capable workers, then the least recently used idle one."""
    from ktrdr.api.run_requests import resolve_run_target, run_params, start_response

    target = resolve_run_target(backend.settings, request.strategy_name, request.symbol, request.timeframe)

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
        OperationType.TRAINING, run_params(request, target), payload, prefer_gpu=True
    )
    return start_response("training", request, target, operation, worker)
