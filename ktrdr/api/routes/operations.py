"""Operations: list (filters, pagination), get (progress pulled from the worker), cancel, worker reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ktrdr.api.schemas import OperationListResponse, OperationResponse
from ktrdr.api.state import BackendDep
from ktrdr.errors import BadRequestError
from ktrdr.names import OperationId, Text
from ktrdr.protocol import OperationReport, OperationStatus, OperationType
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/operations", tags=["operations"])

ONE = "/" + name_param("operation_id")


@router.get("", response_model=OperationListResponse)
async def list_operations(
    backend: BackendDep,
    status: OperationStatus | None = None,
    operation_type: OperationType | None = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31 - 1),
) -> OperationListResponse:
    """Newest first."""
    operations, total = await backend.store.list_operations(
        status=status, operation_type=operation_type, limit=limit, offset=offset
    )
    counts = await backend.store.count_by_status()
    active = counts[OperationStatus.PENDING.value] + counts[OperationStatus.RUNNING.value]
    return OperationListResponse(
        data=operations, total_count=total, active_count=active, limit=limit, offset=offset
    )


@router.get(ONE, response_model=OperationResponse)
async def get_operation(backend: BackendDep, operation_id: OperationId) -> OperationResponse:
    """While running, progress is refreshed from the worker when the stored copy is over a second old."""
    operation = await backend.store.get(operation_id)
    return OperationResponse(data=await backend.lifecycle.refresh(operation))


@router.delete(ONE, response_model=OperationResponse)
async def cancel_operation(
    backend: BackendDep,
    operation_id: OperationId,
    reason: Annotated[Text, Query(max_length=500)] = "cancelled by user",
) -> OperationResponse:
    """Cancel a pending or running operation (the worker is told); 409 when it already finished."""
    return OperationResponse(data=await backend.lifecycle.cancel(operation_id, reason))


@router.patch(ONE + "/status", response_model=OperationResponse)
async def report_status(
    report: OperationReport, backend: BackendDep, operation_id: OperationId
) -> OperationResponse:
    """A worker pushes its report; the first final status wins (a later one is ignored, not an error)."""
    if report.operation_id != operation_id:
        raise BadRequestError(
            f"the report is for {report.operation_id!r} but was sent to {operation_id!r}",
            details={"path": operation_id, "body": report.operation_id},
        )
    return OperationResponse(data=await backend.lifecycle.apply_report(report))
