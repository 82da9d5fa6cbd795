"""Request and response bodies of the backend's routes (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ktrdr.control.models import Operation
from ktrdr.errors import InvalidDateRangeError
from ktrdr.names import ModelPath, StrategyName, Symbol, Timeframe
from ktrdr.protocol import OperationType


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _DateRange(_Request):
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> _DateRange:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise InvalidDateRangeError(
                f"end_date {self.end_date} must be after start_date {self.start_date}",
                details={"start_date": str(self.start_date), "end_date": str(self.end_date)},
            )
        return self


class RunRequest(_DateRange):
    """What every start request names: the strategy and, optionally, another symbol or timeframe."""

    strategy_name: StrategyName
    symbol: Symbol | None = None
    timeframe: Timeframe | None = None


class TrainingStartRequest(RunRequest):
    pass


class BacktestStartRequest(RunRequest):
    initial_capital: float = Field(default=100_000.0, gt=0, le=1e15)
    commission: float = Field(default=0.001, ge=0, lt=1)
    slippage: float = Field(default=0.0005, ge=0, lt=1)
    model_path: ModelPath | None = Field(
        default=None, description="relative to the models directory, e.g. my_strategy/1h_v3"
    )


class StartResponse(BaseModel):
    success: Literal[True] = True
    operation_id: str
    task_id: str = Field(description="same as operation_id (the original system's name)")
    operation_type: OperationType
    status: str
    message: str
    strategy_name: str
    symbol: str
    timeframe: str
    worker_id: str


class OperationResponse(BaseModel):
    success: Literal[True] = True
    data: Operation


class OperationListResponse(BaseModel):
    success: Literal[True] = True
    data: list[Operation]
    total_count: int = Field(description="operations matching the filters, all pages together")
    active_count: int = Field(description="pending or running operations in the whole store")
    limit: int
    offset: int


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
    workers: dict[str, int]


class StrategyListItem(BaseModel):
    name: str
    description: str = ""
    symbol: str | None = None
    timeframe: str | None = None
    source: Literal["bundled", "user"]
    error: str | None = None


class StrategyListResponse(BaseModel):
    success: Literal[True] = True
    strategies: list[StrategyListItem]


class StrategyResponse(BaseModel):
    success: Literal[True] = True
    name: str
    strategy: dict[str, Any]
    features: list[str]


class StrategyValidation(BaseModel):
    valid: bool
    name: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    features: list[str] = Field(default_factory=list)


class DatasetModel(BaseModel):
    symbol: str
    timeframe: str
    rows: int
    start: dt.datetime | None
    end: dt.datetime | None
    size_bytes: int


class DatasetListResponse(BaseModel):
    success: Literal[True] = True
    datasets: list[DatasetModel]


class DatasetResponse(BaseModel):
    success: Literal[True] = True
    dataset: DatasetModel


class ModelListItem(BaseModel):
    strategy: str
    timeframe: str
    version: int
    symbol: str | None = None
    created_at: str | None = None
    is_latest: bool
    test_accuracy: float | None = None


class ModelListResponse(BaseModel):
    success: Literal[True] = True
    models: list[ModelListItem]


class ModelMetadataResponse(BaseModel):
    success: Literal[True] = True
    strategy: str
    timeframe: str
    metadata: dict[str, Any]
