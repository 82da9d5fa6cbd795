"""The wire contract between the backend and its workers (pydantic models, no heavy imports).

Both sides import this module: the control plane (:mod:`ktrdr.control`) and the worker process
(:mod:`ktrdr.worker`). It imports neither (the layers contract in pyproject.toml holds that).

Worker -> backend:
  POST {backend}/api/v1/workers/register          body WorkerRegistration -> WorkerInfo (again when
                                                  the backend's polls stop)
  PATCH {backend}/api/v1/operations/{id}/status   body OperationReport: final status pushed by the worker
Backend -> worker:
  GET    {worker}/health                           -> WorkerHealth (polled every health interval)
  POST   {worker}/backtests/start                  body BacktestStart -> StartAccepted (503 when busy)
  POST   {worker}/training/start                   body TrainingStart -> StartAccepted (503 when busy)
  GET    {worker}/api/v1/operations/{id}           -> OperationReport (progress pulled while running)
  DELETE {worker}/api/v1/operations/{id}/cancel    ?reason=... -> OperationReport

With a token configured every call carries ``Authorization: Bearer <token>`` (:mod:`ktrdr.web.tokens`):
a worker's current token (or, refused, its previous one); from the backend, the token the worker
registered with. A worker's ``GET /health`` also answers without one (container probes), but only
a poll with a valid token counts as the backend's. Ids, symbols, timeframes and model paths are
:mod:`ktrdr.names` types, so either side refuses an unsafe one while parsing (400 INVALID_NAME).

Strategies travel as YAML text inside the start request, so workers need no strategy store. OHLCV
data and models live in the workers' own data and models directories (a shared volume in a
deployment); see docs/architecture.md.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from ktrdr.names import FiniteFloat, JsonObject, ModelPath, OperationId, Symbol, Text, Timeframe, WorkerId


class WorkerType(StrEnum):
    BACKTESTING = "backtesting"
    TRAINING = "training"


class OperationType(StrEnum):
    TRAINING = "training"
    BACKTESTING = "backtesting"


class OperationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED)


OPERATION_FOR_WORKER: dict[OperationType, WorkerType] = {
    OperationType.TRAINING: WorkerType.TRAINING,
    OperationType.BACKTESTING: WorkerType.BACKTESTING,
}


class ProgressModel(BaseModel):
    """Mirror of :class:`ktrdr.jobs.Progress` on the wire."""

    percentage: FiniteFloat = 0.0
    current_step: Text = ""
    steps_completed: int = 0
    steps_total: int = 0
    items_processed: int = 0
    items_total: int = 0
    context: JsonObject = Field(default_factory=dict)


class OperationReport(BaseModel):
    """What a worker knows about one operation it ran or runs."""

    operation_id: OperationId
    status: OperationStatus
    progress: ProgressModel = Field(default_factory=ProgressModel)
    result: JsonObject | None = None
    error_message: Text | None = None
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None

    def without_result(self) -> OperationReport:
        """The report as its status alone: a completed one without its result tells the backend
        to fetch the result from the worker (GET), as a registration or a report too large for
        the backend's body limit does."""
        return self.model_copy(update={"result": None})


class WorkerRegistration(BaseModel):
    worker_id: WorkerId
    worker_type: WorkerType
    # Printable ASCII only: the URL is stored and called, never shown to a shell or a browser.
    endpoint_url: str = Field(pattern=r"^https?://[!-~]+$", max_length=2048)
    capabilities: JsonObject = Field(default_factory=dict)
    current_operation_id: OperationId | None = None
    completed_operations: list[OperationReport] = Field(default_factory=list)


class WorkerStatus(StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    TEMPORARILY_UNAVAILABLE = "temporarily_unavailable"


class WorkerInfo(BaseModel):
    worker_id: str
    worker_type: WorkerType
    endpoint_url: str
    status: WorkerStatus
    current_operation_id: str | None = None
    capabilities: dict[str, Any] = Field(default_factory=dict)
    registered_at: dt.datetime
    last_health_check: dt.datetime | None = None
    last_healthy_at: dt.datetime | None = None
    last_dispatched_at: dt.datetime | None = None
    health_check_failures: int = 0


class WorkerHealth(BaseModel):
    healthy: bool
    service: str
    worker_id: str
    worker_type: WorkerType
    status: str = "operational"
    worker_status: str  # "busy" | "idle"
    current_operation: str | None = None
    timestamp: dt.datetime


class StrategyStart(BaseModel):
    """What every start request carries: the backend's operation id and the strategy as YAML text."""

    operation_id: OperationId
    strategy_yaml: Text


class BacktestStart(StrategyStart):
    symbol: Symbol
    timeframe: Timeframe
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    initial_capital: FiniteFloat = 100_000.0
    commission: FiniteFloat = 0.001
    slippage: FiniteFloat = 0.0005
    model_path: ModelPath | None = None  # relative to the worker's models directory


class TrainingStart(StrategyStart):
    symbol: Symbol | None = None
    timeframe: Timeframe | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class StartAccepted(BaseModel):
    success: bool = True
    operation_id: str
    status: str = "started"
