"""GET /health: is the backend up, does its database answer, how many workers are there."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ktrdr import __version__
from ktrdr.api.schemas import HealthResponse
from ktrdr.api.state import BackendDep

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(backend: BackendDep) -> JSONResponse:
    """200 when the database answers, 503 (status "degraded") when it does not."""
    database_ok = await backend.store.ping()
    body = HealthResponse(
        status="ok" if database_ok else "degraded",
        version=__version__,
        database="ok" if database_ok else "unavailable",
        workers=backend.registry.summary(),
    )
    return JSONResponse(status_code=200 if database_ok else 503, content=body.model_dump(mode="json"))
