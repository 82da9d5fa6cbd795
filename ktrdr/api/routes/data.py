"""Data: list the datasets with their metadata, show one, import a CSV (validated, written atomically)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

from ktrdr.api.schemas import DatasetListResponse, DatasetModel, DatasetResponse
from ktrdr.api.state import BackendDep
from ktrdr.names import Symbol, Timeframe
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/data", tags=["data"])

DATASET = f"/{name_param('symbol')}/{{timeframe}}"
_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}


@router.get("", response_model=DatasetListResponse)
async def list_all(backend: BackendDep) -> DatasetListResponse:
    from ktrdr.data.catalog import list_datasets

    datasets = list_datasets(backend.settings.data_dir)
    return DatasetListResponse(datasets=[DatasetModel.model_validate(d.model_dump()) for d in datasets])


@router.get(DATASET, response_model=DatasetResponse)
async def get_one(backend: BackendDep, symbol: Symbol, timeframe: Timeframe) -> DatasetResponse:
    from ktrdr.data.catalog import dataset_info

    info = dataset_info(backend.settings.data_dir, symbol, timeframe)
    return DatasetResponse(dataset=DatasetModel.model_validate(info.model_dump()))


@router.post(
    DATASET,
    response_model=DatasetResponse,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_CSV_BODY,
)
async def import_one(
    request: Request,
    backend: BackendDep,
    symbol: Symbol,
    timeframe: Timeframe,
    overwrite: bool = Query(False, description="replace an existing dataset"),
) -> DatasetResponse:
    """Import an OHLCV CSV (text/csv). Every row is checked before anything is written; 409 when the
    dataset exists and ``overwrite`` is false."""
    from ktrdr.data.csv_import import import_csv

    content = await request.body()
    info = import_csv(backend.settings.data_dir, symbol, timeframe, content, overwrite=overwrite)
    return DatasetResponse(dataset=DatasetModel.model_validate(info.model_dump()))
