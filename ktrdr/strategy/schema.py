"""The strategy document: a pydantic schema for the v3 YAML format (no numpy anywhere).

A strategy names its indicators, the fuzzy sets over them, which fuzzy sets feed the network,
the network, the decision rules, how to train, and on what data. Unknown keys are errors, so
typos never pass silently; every error names the exact key path.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ktrdr.indicators.specs import check_indicator, output_columns
from ktrdr.names import STRATEGY_NAME, StrategyName, Symbol, Timeframe, is_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MembershipFunction(_Strict):
    """One fuzzy set: ``triangular`` [a, b, c], ``trapezoidal`` [a, b, c, d] or ``gaussian`` [mu, sigma]."""

    type: Literal["triangular", "trapezoidal", "gaussian"]
    parameters: list[float]

    @model_validator(mode="after")
    def _check_shape(self) -> MembershipFunction:
        expected = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}[self.type]
        p = self.parameters
        if len(p) != expected:
            raise ValueError(f"{self.type} takes {expected} parameters, got {len(p)}")
        if self.type == "gaussian":
            if p[1] <= 0:
                raise ValueError("gaussian sigma must be > 0")
        elif any(a > b for a, b in itertools.pairwise(p)):
            raise ValueError(f"{self.type} parameters must be non-decreasing, got {p}")
        return self


class FuzzySetGroup(BaseModel):
    """Fuzzy sets over one indicator output; keys other than ``indicator`` are set names.

    A bare list of three numbers is shorthand for a triangular set (the v3 convention).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    indicator: str
    sets: dict[str, MembershipFunction] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_sets(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        sets: dict[str, Any] = {}
        for key in [k for k in data if k not in ("indicator", "sets")]:
            value = data.pop(key)
            if isinstance(value, list):
                value = {"type": "triangular", "parameters": value}
            sets[key] = value
        data["sets"] = {**data.get("sets", {}), **sets}
        return data

    @model_validator(mode="after")
    def _at_least_one(self) -> FuzzySetGroup:
        if not self.sets:
            raise ValueError("a fuzzy set group needs at least one membership function")
        return self

    @property
    def indicator_id(self) -> str:
        """The indicator this group reads (``macd_12_26_9`` for ``macd_12_26_9.signal``)."""
        return self.indicator.split(".", 1)[0]


class NNInput(_Strict):
    """One input block of the network: every membership of a fuzzy set group."""

    fuzzy_set: str


class Architecture(_Strict):
    hidden_layers: list[Annotated[int, Field(gt=0, le=4096)]] = Field(default_factory=lambda: [32, 16])
    activation: Literal["relu", "tanh", "sigmoid", "leaky_relu"] = "relu"
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)


class ModelConfig(_Strict):
    type: Literal["mlp"] = "mlp"
    architecture: Architecture = Field(default_factory=Architecture)


class Decisions(_Strict):
    """How network outputs become trades."""

    confidence_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    min_signal_separation: int = Field(default=4, ge=0, description="minimum bars between two trades")
    allow_short: bool = False


class ZigZagLabels(_Strict):
    source: Literal["zigzag"] = "zigzag"
    threshold: float = Field(default=0.02, gt=0.0, lt=1.0, description="fractional move that defines a swing")
    lookahead: int = Field(default=20, gt=0, le=10_000)


class DataSplit(_Strict):
    train: float = Field(default=0.7, gt=0.0, lt=1.0)
    validation: float = Field(default=0.15, gt=0.0, lt=1.0)
    test: float = Field(default=0.15, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> DataSplit:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1.0, got {total:g}")
        return self


class EarlyStopping(_Strict):
    patience: int = Field(default=5, ge=1)
    min_delta: float = Field(default=1e-4, ge=0.0)


class Training(_Strict):
    epochs: int = Field(default=50, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    learning_rate: float = Field(default=1e-3, gt=0.0, lt=1.0)
    seed: int = 42
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    labels: ZigZagLabels = Field(default_factory=ZigZagLabels)
    data_split: DataSplit = Field(default_factory=DataSplit)


class TrainingData(_Strict):
    symbol: Symbol
    timeframe: Timeframe
    start_date: dt.date | None = None
    end_date: dt.date | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_v3_nesting(cls, data: Any) -> Any:
        """Accept the original ``symbols: {mode: single, symbol: X}`` / ``timeframes`` nesting."""
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("symbols"), dict) and "symbol" not in data:
                data["symbol"] = data.pop("symbols").get("symbol")
            if isinstance(data.get("timeframes"), dict) and "timeframe" not in data:
                data["timeframe"] = data.pop("timeframes").get("timeframe")
            data.pop("history_required", None)
        return data

    @model_validator(mode="after")
    def _ordered(self) -> TrainingData:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError(f"end_date {self.end_date} must be after start_date {self.start_date}")
        return self


class StrategyConfig(_Strict):
    """A whole strategy document."""

    name: StrategyName
    version: str = "3.0"
    description: str = ""
    indicators: dict[str, dict[str, Any]]
    fuzzy_sets: dict[str, FuzzySetGroup]
    nn_inputs: list[NNInput] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    decisions: Decisions = Field(default_factory=Decisions)
    training: Training = Field(default_factory=Training)
    training_data: TrainingData

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> str:
        return str(v)

    @model_validator(mode="after")
    def _semantics(self) -> StrategyConfig:
        problems = semantic_problems(self)
        if problems:
            raise StrategyProblems(problems)
        return self

    def indicator_columns(self) -> dict[str, list[str]]:
        """Indicator id -> the columns it produces (``id`` or ``id.output``...)."""
        return {ind_id: output_columns(ind_id, spec) for ind_id, spec in self.indicators.items()}


class StrategyProblems(ValueError):
    """Cross-field problems, each with the exact dotted key path (the loader reports them one by one)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in problems))


def semantic_problems(config: StrategyConfig) -> list[tuple[str, str]]:
    """Checks that need the indicator catalog or span sections: (dotted key path, message) pairs."""
    problems: list[tuple[str, str]] = []
    if not config.indicators:
        problems.append(("indicators", "at least one indicator is required"))
    columns: dict[str, list[str]] = {}
    for ind_id, spec in config.indicators.items():
        if not _is_name(ind_id):
            problems.append((f"indicators.{ind_id}", f"invalid indicator id {ind_id!r}"))
            continue
        found = check_indicator(spec)
        problems.extend((f"indicators.{ind_id}.{key}", msg) for key, msg in found)
        if not found:
            columns[ind_id] = output_columns(ind_id, spec)

    for group_id, group in config.fuzzy_sets.items():
        loc = f"fuzzy_sets.{group_id}"
        if not _is_name(group_id):
            problems.append((loc, f"invalid fuzzy set name {group_id!r}"))
        problems.extend(
            (f"{loc}.{member}", f"invalid membership name {member!r}")
            for member in group.sets
            if not _is_name(member)
        )
        ref = group.indicator
        if group.indicator_id not in config.indicators:
            problems.append((f"{loc}.indicator", f"refers to unknown indicator {group.indicator_id!r}"))
        elif group.indicator_id in columns and ref not in columns[group.indicator_id]:
            outputs = columns[group.indicator_id]
            problems.append((f"{loc}.indicator", f"{ref!r} is not an indicator output; use one of {outputs}"))

    seen: dict[str, int] = {}
    features: dict[str, str] = {}
    for i, nn_input in enumerate(config.nn_inputs):
        loc = f"nn_inputs.{i}.fuzzy_set"
        name = nn_input.fuzzy_set
        if name not in config.fuzzy_sets:
            problems.append((loc, f"refers to unknown fuzzy set {name!r}"))
            continue
        if name in seen:
            problems.append((loc, f"fuzzy set {name!r} is already an input (nn_inputs.{seen[name]})"))
            continue
        seen[name] = i
        for member in config.fuzzy_sets[name].sets:
            feature = f"{name}_{member}"
            if feature in features:
                problems.append((loc, f"feature name {feature!r} is produced twice ({features[feature]})"))
            features[feature] = f"nn_inputs.{i}"
    return problems


def _is_name(text: str) -> bool:
    return is_name(text, STRATEGY_NAME)
