"""Workers: register (idempotent), list with filters, get one (404 tells a worker to register again)."""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.state import BackendDep
from ktrdr.names import WorkerId
from ktrdr.protocol import WorkerInfo, WorkerRegistration, WorkerStatus, WorkerType
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/workers", tags=["workers"])


@router.post("/register", response_model=WorkerInfo)
async def register_worker(registration: WorkerRegistration, backend: BackendDep) -> WorkerInfo:
    """Add or refresh a worker, then settle the operations it reports as running or finished."""
    info = await backend.registry.register(registration)
    await backend.lifecycle.on_registered(registration)
    return backend.registry.find(info.worker_id) or info


@router.get("", response_model=list[WorkerInfo])
async def list_workers(
    backend: BackendDep, worker_type: WorkerType | None = None, status: WorkerStatus | None = None
) -> list[WorkerInfo]:
    return backend.registry.list_workers(worker_type=worker_type, status=status)


@router.get("/" + name_param("worker_id"), response_model=WorkerInfo)
async def get_worker(backend: BackendDep, worker_id: WorkerId) -> WorkerInfo:
    return backend.registry.get(worker_id)
