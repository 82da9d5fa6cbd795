"""Reading strategy YAML: parsing with precise errors, and finding strategies by name.

Strategies are looked up by file name (``{name}.yaml`` or ``.yml``): first in the user's strategies
directory, then among the bundled ones, so a user file overrides a bundled strategy of the same name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel

from ktrdr.errors import StrategyNotFoundError, StrategyValidationError
from ktrdr.names import STRATEGY_NAME, is_name, json_problem, validate_strategy_name
from ktrdr.strategy.schema import StrategyConfig, StrategyProblems

MAX_STRATEGY_BYTES = 256 * 1024
MAX_NODES = 20_000  # YAML aliases can make a small text expand exponentially
_SUFFIXES = (".yaml", ".yml")


class StrategySummary(BaseModel):
    """One entry of a strategy listing; an invalid user file is listed with ``error`` set."""

    name: str
    description: str = ""
    symbol: str | None = None
    timeframe: str | None = None
    source: Literal["bundled", "user"]
    path: Path
    error: str | None = None


def bundled_strategies_dir() -> Path:
    return Path(__file__).parent / "bundled"


def parse_strategy(text: str) -> StrategyConfig:
    """Parse and validate a strategy document; StrategyValidationError lists every bad key path."""
    if len(text) > MAX_STRATEGY_BYTES:
        raise _invalid(
            [{"loc": "", "msg": f"document is {len(text)} characters; the limit is {MAX_STRATEGY_BYTES}"}]
        )
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or str(exc)
        raise _invalid(
            [{"loc": "", "msg": f"YAML syntax error at line {line}, column {column}: {problem}"}],
            line=line,
            column=column,
        ) from None
    except yaml.YAMLError as exc:
        raise _invalid([{"loc": "", "msg": f"YAML error: {exc}"}]) from None
    if data is None:
        raise _invalid([{"loc": "", "msg": "the document is empty"}])
    if not isinstance(data, dict):
        raise _invalid([{"loc": "", "msg": f"expected a mapping of keys, got {type(data).__name__}"}])
    # Bounded (aliases), and what a message or a response could not carry: YAML escapes can spell
    # what UTF-8 text cannot hold ("\ud800") or a NUL ("\0"), and .nan or .inf a number JSON cannot.
    if (unfit := json_problem(data, max_values=MAX_NODES)) is not None:
        raise _invalid([{"loc": "", "msg": f"the document {unfit}"}])
    try:
        return StrategyConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _invalid(_errors(exc, data)) from None


def strategy_digest(text: str) -> str:
    """The SHA-256 of a strategy's YAML text, as results record which strategy produced them."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_strategy(path: Path | str) -> tuple[StrategyConfig, str]:
    """Parse a strategy file and return it with the text it was parsed from; errors name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyNotFoundError(f"strategy file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyValidationError(f"cannot read strategy file {path}: {exc}") from None
    try:
        return parse_strategy(text), text
    except StrategyValidationError as exc:
        raise StrategyValidationError(f"{path.name}: {exc.message}", details=exc.details) from None


def load_strategy(path: Path | str) -> StrategyConfig:
    """Parse a strategy file; errors name the file."""
    return read_strategy(path)[0]


def list_strategies(user_dir: Path | None = None) -> list[StrategySummary]:
    """Bundled and user strategies by name (user files override bundled ones), sorted by name."""
    found: dict[str, StrategySummary] = {}
    for source, directory in (("bundled", bundled_strategies_dir()), ("user", user_dir)):
        for path in _strategy_files(directory):
            found[path.stem] = _summarise(path, source)  # type: ignore[arg-type]
    return [found[name] for name in sorted(found)]


def get_strategy(name: str, user_dir: Path | None = None) -> tuple[StrategyConfig, Path]:
    """The strategy called ``name`` and its file; InvalidNameError, StrategyNotFoundError."""
    path = find_strategy_file(name, user_dir)
    return load_strategy(path), path


def find_strategy_file(name: str, user_dir: Path | None = None) -> Path:
    """The file of the strategy ``name`` (user directory first); InvalidNameError, StrategyNotFoundError."""
    validate_strategy_name(name)
    for directory in (user_dir, bundled_strategies_dir()):
        if directory is None:
            continue
        for suffix in _SUFFIXES:
            path = Path(directory) / f"{name}{suffix}"
            if path.is_file():
                return path
    raise StrategyNotFoundError(f"no strategy named {name!r}", details={"name": name})


def _strategy_files(directory: Path | None) -> list[Path]:
    if directory is None or not Path(directory).is_dir():
        return []
    return sorted(
        p
        for p in Path(directory).iterdir()
        if p.suffix in _SUFFIXES and p.is_file() and is_name(p.stem, STRATEGY_NAME)
    )


def _summarise(path: Path, source: Literal["bundled", "user"]) -> StrategySummary:
    try:
        config = load_strategy(path)
    except (StrategyValidationError, StrategyNotFoundError) as exc:
        return StrategySummary(name=path.stem, source=source, path=path, error=exc.message)
    return StrategySummary(
        name=path.stem,
        description=config.description,
        symbol=config.training_data.symbol,
        timeframe=config.training_data.timeframe,
        source=source,
        path=path,
    )


def _invalid(errors: list[dict[str, Any]], **extra: Any) -> StrategyValidationError:
    first = errors[0]
    where = f"{first['loc']}: " if first["loc"] else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    details: dict[str, Any] = {"errors": errors}
    details.update({k: v for k, v in extra.items() if v is not None})
    return StrategyValidationError(f"invalid strategy: {where}{first['msg']}{more}", details=details)


def _errors(exc: pydantic.ValidationError, data: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, StrategyProblems):
            out.extend({"loc": loc, "msg": msg} for loc, msg in cause.problems)
            continue
        loc = _user_loc(err["loc"], data)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        out.append({"loc": loc, "msg": msg})
    return out


def _user_loc(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    """Dotted path as the user wrote it: fuzzy sets are written without the internal ``sets`` level."""
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "fuzzy_sets" and parts[2] == "sets":
        group = (data.get("fuzzy_sets") or {}).get(parts[1])
        if not (isinstance(group, dict) and "sets" in group):
            del parts[2]
    return ".".join(str(p) for p in parts)
