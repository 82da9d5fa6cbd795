"""What a running backend holds (store, registry, dispatcher...) and how routes reach it.

The lifespan in :mod:`ktrdr.api.main` builds one :class:`Backend` and puts it on ``app.state``;
routes get it through the :func:`backend` dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from ktrdr.errors import ServiceUnavailableError

if TYPE_CHECKING:
    # SQLAlchemy and httpx load in the lifespan, not when the app module is imported.
    from ktrdr.api.metrics import BackendMetrics
    from ktrdr.control.dispatch import Dispatcher
    from ktrdr.control.lifecycle import OperationLifecycle
    from ktrdr.control.registry import WorkerRegistry
    from ktrdr.control.store import OperationStore
    from ktrdr.control.worker_client import WorkerClient
    from ktrdr.settings import Settings


@dataclass
class Backend:
    settings: Settings
    store: OperationStore
    client: WorkerClient
    registry: WorkerRegistry
    lifecycle: OperationLifecycle
    dispatcher: Dispatcher
    metrics: BackendMetrics


def get_backend(request: Request) -> Backend:
    backend: Backend | None = getattr(request.app.state, "backend", None)
    if backend is None:
        raise ServiceUnavailableError("the backend is starting or stopping; retry shortly")
    return backend


BackendDep = Annotated[Backend, Depends(get_backend)]
