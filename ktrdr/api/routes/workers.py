"""Workers: register (idempotent; each is called with the token it registered with), list, get one."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ktrdr.api.state import BackendDep
from ktrdr.names import WorkerId
from ktrdr.protocol import WorkerInfo, WorkerRegistration, WorkerStatus, WorkerType
from ktrdr.web.guard import authenticated_slot
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/workers", tags=["workers"])


@router.post("/register", response_model=WorkerInfo)
async def register_worker(
    registration: WorkerRegistration, backend: BackendDep, request: Request
) -> WorkerInfo:
    """Add or refresh a worker, then settle the operations it reports as running or finished."""
    # The worker is called with the token this registration presented, and no other.
    info = await backend.registry.register(registration, token=authenticated_slot(request))
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
