"""The backend's routers, one module per resource; ``ROUTERS`` lists them for the app factory.

Route modules import the domain code they call (strategy loader, data catalog, model storage)
inside the handlers: the backend's start-up then pays only for FastAPI and pydantic.
"""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.routes import backtests, data, health, models, operations, strategies, trainings, workers

ROUTERS: list[APIRouter] = [
    health.router,
    workers.router,
    operations.router,
    trainings.router,
    backtests.router,
    strategies.router,
    data.router,
    models.router,
]
