"""The indicator catalog in pure Python: names, parameters (defaults, bounds), output columns.

Strategies are validated against this without numpy (the backend does it); the numeric functions in
``ktrdr.indicators.functions`` take exactly these parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES: tuple[str, ...] = ("open", "high", "low", "close", "volume")
MAX_PERIOD = 10_000


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: type  # int, float or str
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # the original v3 names (fast_period, multiplier...)

    def check(self, value: Any) -> str | None:
        """An error message for a bad value, or None."""
        if self.kind is str:
            if value not in self.choices:
                return f"must be one of {', '.join(self.choices)}, got {value!r}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if self.kind is int and not (isinstance(value, int) or float(value).is_integer()):
            return f"must be an integer, got {value!r}"
        if value != value or value in (float("inf"), float("-inf")):
            return f"must be finite, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}, got {value!r}"
        return None


@dataclass(frozen=True)
class IndicatorSpec:
    name: str
    description: str
    params: tuple[ParamSpec, ...] = ()
    outputs: tuple[str, ...] = ()  # empty: one unnamed output (column = the indicator id)
    aliases: tuple[str, ...] = ()
    _param_index: dict[str, ParamSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for p in self.params:
            for key in (p.name, *p.aliases):
                self._param_index[key] = p

    def param(self, key: str) -> ParamSpec | None:
        return self._param_index.get(key)

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


def _period(default: int, minimum: int = 1, aliases: tuple[str, ...] = ()) -> ParamSpec:
    return ParamSpec("period", int, default, minimum, MAX_PERIOD, aliases=aliases)


_SOURCE = ParamSpec("source", str, "close", choices=SOURCES)

CATALOG: dict[str, IndicatorSpec] = {
    s.name: s
    for s in (
        IndicatorSpec("sma", "simple moving average", (_period(20), _SOURCE)),
        IndicatorSpec("ema", "exponential moving average, alpha = 2/(period+1)", (_period(20), _SOURCE)),
        IndicatorSpec("rsi", "relative strength index, Wilder smoothing", (_period(14, 2), _SOURCE)),
        IndicatorSpec(
            "macd",
            "moving average convergence/divergence",
            (
                ParamSpec("fast", int, 12, 1, MAX_PERIOD, aliases=("fast_period",)),
                ParamSpec("slow", int, 26, 2, MAX_PERIOD, aliases=("slow_period",)),
                ParamSpec("signal", int, 9, 1, MAX_PERIOD, aliases=("signal_period",)),
                _SOURCE,
            ),
            outputs=("macd", "signal", "histogram"),
        ),
        IndicatorSpec(
            "bollinger_bands",
            "Bollinger bands: SMA plus/minus std times the population standard deviation",
            (
                _period(20, 2),
                ParamSpec("std", float, 2.0, 0.01, 100.0, aliases=("multiplier", "num_std")),
                _SOURCE,
            ),
            outputs=("upper", "middle", "lower"),
            aliases=("bbands", "bollinger"),
        ),
        IndicatorSpec("atr", "average true range, Wilder smoothing", (_period(14),)),
        IndicatorSpec(
            "stochastic",
            "stochastic oscillator: fast %K and its SMA %D",
            (
                ParamSpec("k_period", int, 14, 1, MAX_PERIOD, aliases=("fastk_period",)),
                ParamSpec("d_period", int, 3, 1, MAX_PERIOD, aliases=("fastd_period",)),
            ),
            outputs=("k", "d"),
            aliases=("stoch",),
        ),
        IndicatorSpec("williams_r", "Williams %R, in [-100, 0]", (_period(14),), aliases=("willr",)),
        IndicatorSpec("roc", "rate of change, percent", (_period(10), _SOURCE)),
        IndicatorSpec("obv", "on-balance volume"),
        IndicatorSpec("cci", "commodity channel index (mean absolute deviation, 0.015)", (_period(20, 2),)),
        IndicatorSpec(
            "adx",
            "average directional index with +DI and -DI, Wilder smoothing",
            (_period(14, 2),),
            outputs=("adx", "plus_di", "minus_di"),
        ),
    )
}


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


_BY_KEY: dict[str, IndicatorSpec] = {}
for _spec in CATALOG.values():
    for _alias in (_spec.name, *_spec.aliases):
        _BY_KEY[_key(_alias)] = _spec


def find_spec(type_name: str) -> IndicatorSpec | None:
    """The spec for an indicator type, case- and underscore-insensitive (``RSI``, ``bbands``...)."""
    return _BY_KEY.get(_key(type_name)) if isinstance(type_name, str) else None


def check_indicator(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with one strategy indicator entry as (key, message); ``key`` is the offending field."""
    type_name = config.get("type")
    if not isinstance(type_name, str):
        return [("type", "an indicator needs a 'type' (one of " + ", ".join(CATALOG) + ")")]
    spec = find_spec(type_name)
    if spec is None:
        return [("type", f"unknown indicator type {type_name!r}; known: {', '.join(CATALOG)}")]
    problems: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for key, value in config.items():
        if key == "type":
            continue
        param = spec.param(key)
        if param is None:
            allowed = ", ".join(spec.param_names) or "none"
            problems.append((key, f"unknown parameter {key!r} for {spec.name} (parameters: {allowed})"))
            continue
        if param.name in seen:
            problems.append(
                (key, f"{key!r} repeats parameter {param.name!r} (given as {seen[param.name]!r})")
            )
            continue
        seen[param.name] = key
        if (msg := param.check(value)) is not None:
            problems.append((key, f"{spec.name} {param.name} {msg}"))
    if not problems and spec.name == "macd":
        params = resolve_params(config)
        if params["fast"] >= params["slow"]:
            problems.append(("fast", f"macd fast ({params['fast']}) must be < slow ({params['slow']})"))
    return problems


def resolve_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical parameters (names, types, defaults filled) of a valid indicator entry."""
    spec = find_spec(config["type"])
    if spec is None:
        raise KeyError(config["type"])
    resolved = {p.name: p.default for p in spec.params}
    for key, value in config.items():
        param = spec.param(key)
        if param is not None:
            resolved[param.name] = param.kind(value)
    return resolved


def output_columns(indicator_id: str, config: Mapping[str, Any]) -> list[str]:
    """The columns ``compute_indicators`` makes for this entry: ``id`` or ``id.output`` for each output."""
    spec = find_spec(config["type"])
    if spec is None:
        raise KeyError(config["type"])
    return [f"{indicator_id}.{o}" for o in spec.outputs] if spec.outputs else [indicator_id]
