"""Strategies: list (bundled and user), get one with its features, validate an uploaded YAML document.

``POST /strategies/validate`` answers 200 ``{valid, errors, features}`` for any YAML mapping it can
judge (``valid: false`` lists each bad key path), and 422 INVALID_STRATEGY when the body is not a
strategy document at all (YAML syntax error, empty, not a mapping, not UTF-8, too large).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from ktrdr.api.schemas import StrategyListItem, StrategyListResponse, StrategyResponse, StrategyValidation
from ktrdr.api.state import BackendDep
from ktrdr.errors import StrategyValidationError
from ktrdr.names import StrategyName
from ktrdr.web.paths import name_param

router = APIRouter(prefix="/strategies", tags=["strategies"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string"}} for t in ("application/yaml", "text/yaml", "text/plain")
        },
    }
}


@router.get("", response_model=StrategyListResponse)
async def list_all(backend: BackendDep) -> StrategyListResponse:
    """Bundled and user strategies; a user file overrides a bundled one of the same name."""
    from ktrdr.strategy.loader import list_strategies

    summaries = list_strategies(backend.settings.resolved_strategies_dir)
    return StrategyListResponse(
        strategies=[StrategyListItem.model_validate(s.model_dump(exclude={"path"})) for s in summaries]
    )


@router.get("/" + name_param("name"), response_model=StrategyResponse)
async def get_one(backend: BackendDep, name: StrategyName) -> StrategyResponse:
    from ktrdr.features import feature_names
    from ktrdr.strategy.loader import get_strategy

    strategy, _path = get_strategy(name, backend.settings.resolved_strategies_dir)
    return StrategyResponse(
        name=name, strategy=strategy.model_dump(mode="json"), features=feature_names(strategy)
    )


@router.post("/validate", response_model=StrategyValidation, openapi_extra=_YAML_BODY)
async def validate(request: Request) -> StrategyValidation:
    """Validate a strategy sent as the raw body (application/yaml, text/yaml or text/plain)."""
    from ktrdr.features import feature_names
    from ktrdr.strategy.loader import parse_strategy

    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StrategyValidationError(
            "the strategy document is not UTF-8 text", details={"errors": [{"loc": "", "msg": "not UTF-8"}]}
        ) from None
    try:
        strategy = parse_strategy(text)
    except StrategyValidationError as exc:
        errors = list(exc.details.get("errors", []))
        if not errors or all(not e.get("loc") for e in errors):
            raise  # not a strategy document at all: a 4xx, not a verdict
        return StrategyValidation(valid=False, errors=errors)
    return StrategyValidation(valid=True, name=strategy.name, features=feature_names(strategy))
