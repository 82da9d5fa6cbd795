"""Models: list the trained model versions, read one's metadata (the latest, or ``?version=``)."""

from __future__ import annotations

from fastapi import APIRouter

from ktrdr.api.schemas import ModelListItem, ModelListResponse, ModelMetadataResponse
from ktrdr.api.state import BackendDep
from ktrdr.names import ModelVersion, StrategyName, Timeframe
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=ModelListResponse)
async def list_all(backend: BackendDep) -> ModelListResponse:
    from ktrdr.training.model_storage import list_models

    models = list_models(backend.settings.resolved_models_dir)
    return ModelListResponse(models=[ModelListItem.model_validate(m.to_dict()) for m in models])


@router.get(f"/{name_param('strategy')}/{{timeframe}}", response_model=ModelMetadataResponse)
async def get_metadata(
    backend: BackendDep, strategy: StrategyName, timeframe: Timeframe, version: ModelVersion | None = None
) -> ModelMetadataResponse:
    from ktrdr.training.model_storage import read_model_metadata

    metadata = read_model_metadata(backend.settings.resolved_models_dir, strategy, timeframe, version)
    return ModelMetadataResponse(strategy=strategy, timeframe=timeframe, metadata=metadata)
