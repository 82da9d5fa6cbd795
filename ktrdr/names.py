"""Names that end up in a file path or a database key, checked in one place.

Strategy names, symbols, timeframes, model paths and versions, operation ids and worker ids each
have a :class:`NameRule` (a whitelist pattern and a length limit). :func:`check_name` applies a
rule: first a screen that says precisely what is wrong with hostile text (NUL and other control
or formatting characters, lone surrogates, other non-ASCII characters, over-long text,
backslashes, ``%`` escapes, absolute paths, ``.``/``..`` segments), then the whitelist (after the
rule's normaliser, which only ever sees ASCII). A refusal is :class:`InvalidNameError`
(400 ``INVALID_NAME``) whose message names the kind of name, the reason and what is allowed.

The pydantic types at the end (:data:`StrategyName`, :data:`Symbol`, ...) put the same check into
request schemas, wire types and path or query parameters, so that a bad name is refused while a
request is parsed, before any route reads or writes anything. Their error type is
:data:`INVALID_NAME`; the HTTP error handlers turn it into the 400 envelope naming the field.

Free text that is stored or echoed (reasons, error messages, results) is not a name, but it must
still be something a database and a JSON response can take: :data:`Text` and :data:`JsonObject`
refuse NUL bytes and lone surrogates, :data:`JsonObject` and :data:`FiniteFloat` numbers that are
not finite (422, like any other field error).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AllowInfNan, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ktrdr.errors import INVALID_NAME_TYPE as INVALID_NAME
from ktrdr.errors import InvalidNameError

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")

# Shown in messages: enough to recognise the value, never enough to flood a log or a response.
_SHOWN_CHARS = 64
# Unicode categories no name may contain: controls, formatting (bidi overrides, zero-width
# joiners), surrogates (a lone one is not valid text), private use, unassigned, line/paragraph
# separators.
_FORBIDDEN_CATEGORIES = {
    "Cc": "the control character",
    "Cf": "the invisible formatting character",
    "Cs": "a lone surrogate (not valid Unicode) at",
    "Co": "the private-use character",
    "Cn": "the unassigned code point",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
}


@dataclass(frozen=True)
class NameRule:
    """What one kind of name may be: a full-match whitelist, a length limit, an optional normaliser."""

    kind: str  # "strategy name", "symbol"... (messages say "invalid <kind>")
    pattern: str  # anchored; also published as the JSON schema pattern
    max_length: int
    allowed: str  # what the pattern allows, in words
    path: bool = False  # a relative path: "/" separates segments
    normalise: Callable[[str], str] | None = None

    def matches(self, value: str) -> bool:
        return re.fullmatch(self.pattern, value) is not None


def _one_of(values: tuple[str, ...]) -> str:
    return "^(" + "|".join(re.escape(v) for v in values) + ")$"


_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"

STRATEGY_NAME = NameRule(
    "strategy name",
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
    64,
    "1-64 letters, digits, '_' or '-', starting with a letter or digit",
)
SYMBOL = NameRule(
    "symbol",
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$",
    32,
    "1-32 letters, digits, '_' or '-', starting with a letter or digit (upper-cased)",
    normalise=lambda s: s.strip().upper(),
)
TIMEFRAME = NameRule("timeframe", _one_of(TIMEFRAMES), 3, "one of " + ", ".join(TIMEFRAMES))
MODEL_PATH = NameRule(
    "model path",
    rf"^{_SEGMENT}(/{_SEGMENT}){{0,7}}$",
    512,
    "a path relative to the models directory, such as 'my_strategy/1h_v3', of 1-8 segments of "
    "letters, digits, '_', '-' or '.', each starting with a letter or digit",
    path=True,
)
MODEL_VERSION = NameRule("model version", r"^[1-9][0-9]{0,8}$", 9, "a whole number from 1 to 999999999")
OPERATION_ID = NameRule(
    "operation id",
    r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
    64,
    "1-64 letters, digits, '_' or '-', starting with a letter or digit",
)
WORKER_ID = NameRule(
    "worker id",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
    128,
    "1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
)


def name_problem(value: object, rule: NameRule) -> str | None:
    """Why ``value`` is not a safe ``rule`` name (a short phrase), or None when it is one."""
    if not isinstance(value, str):
        return f"is a {type(value).__name__}, not text"
    if not value:
        return "is empty"
    if len(value) > rule.max_length:
        return f"is {len(value)} characters long; the limit is {rule.max_length}"
    for char in value:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            label = "a NUL byte" if char == "\x00" else f"{_FORBIDDEN_CATEGORIES[category]} U+{ord(char):04X}"
            return f"contains {label}"
    if not value.isascii():
        # Before any normalising: upper() maps "ß" to "SS" and "ﬁ" to "FI", which the whitelist would pass.
        char = next(c for c in value if not c.isascii())
        return f"contains the non-ASCII character U+{ord(char):04X} (names are ASCII)"
    if "\\" in value:
        return "contains a backslash"
    if "%" in value:
        return "contains '%' (names are never URL-decoded twice)"
    if value.startswith("/"):
        return "is an absolute path"
    segments = value.split("/")
    if "." in segments or ".." in segments:
        return "contains a '.' or '..' path segment"
    if len(segments) > 1 and not rule.path:
        return "contains '/'"
    normalised = rule.normalise(value) if rule.normalise else value
    if not rule.matches(normalised):
        return "has characters or a form that is not allowed"
    return None


def shown(value: object) -> str:
    """A value as messages and logs may show it: its ``repr`` (controls, surrogates escaped), cut short."""
    if isinstance(value, str):
        return repr(value[:_SHOWN_CHARS]) + ("..." if len(value) > _SHOWN_CHARS else "")
    return type(value).__name__


def check_name(value: object, rule: NameRule, *, field: str | None = None) -> str:
    """``value`` normalised when it is a safe ``rule`` name; InvalidNameError saying why otherwise."""
    problem = name_problem(value, rule)
    if problem is not None:
        raise InvalidNameError(
            f"invalid {rule.kind} {shown(value)}: it {problem}; use {rule.allowed}",
            details={
                "field": field or rule.kind.replace(" ", "_"),
                "reason": problem,
                "allowed": rule.allowed,
            },
        )
    assert isinstance(value, str)
    return rule.normalise(value) if rule.normalise else value


def validate_symbol(symbol: str) -> str:
    """The symbol in upper case; InvalidNameError unless it is 1-32 of ``A-Z 0-9 _ -``."""
    return check_name(symbol, SYMBOL, field="symbol")


def validate_timeframe(timeframe: str) -> str:
    """The timeframe if it is one of 1m 5m 15m 30m 1h 4h 1d 1w; InvalidNameError otherwise."""
    return check_name(timeframe, TIMEFRAME, field="timeframe")


def validate_strategy_name(name: str) -> str:
    return check_name(name, STRATEGY_NAME, field="name")


def is_name(value: object, rule: NameRule) -> bool:
    return name_problem(value, rule) is None


# --- pydantic types ------------------------------------------------------------------------------


def _validator(rule: NameRule, convert: Callable[[str], Any] = str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # the declared type reports a number or a list where text belongs
        problem = name_problem(value, rule)
        if problem is not None:
            raise PydanticCustomError(
                INVALID_NAME,
                "invalid {kind}: it {reason}; use {allowed}",
                {"kind": rule.kind, "reason": problem, "allowed": rule.allowed},
            )
        return convert(rule.normalise(value) if rule.normalise else value)

    return BeforeValidator(check)


def _schema(rule: NameRule, **extra: Any) -> WithJsonSchema:
    return WithJsonSchema(
        {"type": "string", "pattern": rule.pattern, "minLength": 1, "maxLength": rule.max_length, **extra}
    )


StrategyName = Annotated[str, _validator(STRATEGY_NAME), _schema(STRATEGY_NAME)]
Symbol = Annotated[str, _validator(SYMBOL), _schema(SYMBOL)]
Timeframe = Annotated[
    str, _validator(TIMEFRAME), WithJsonSchema({"type": "string", "enum": list(TIMEFRAMES)})
]
ModelPath = Annotated[str, _validator(MODEL_PATH), _schema(MODEL_PATH)]
OperationId = Annotated[str, _validator(OPERATION_ID), _schema(OPERATION_ID)]
WorkerId = Annotated[str, _validator(WORKER_ID), _schema(WORKER_ID)]


def _version_in_range(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 999_999_999:
        raise PydanticCustomError(
            INVALID_NAME,
            "invalid {kind}: it {reason}; use {allowed}",
            {"kind": MODEL_VERSION.kind, "reason": "is out of range", "allowed": MODEL_VERSION.allowed},
        )
    return value


# Text (a query parameter) or a JSON number; either way a whole number from 1.
ModelVersion = Annotated[
    int,
    BeforeValidator(_version_in_range),
    _validator(MODEL_VERSION, int),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 999_999_999}),
]


# --- free text -----------------------------------------------------------------------------------

INVALID_TEXT = "invalid_text"
INVALID_JSON_VALUE = "invalid_json_value"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (PostgreSQL refuses NUL; UTF-8 has no lone surrogates)."""
    if "\x00" in value:
        return "contains a NUL byte"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate U+{ord(value[exc.start]):04X} (not valid Unicode)"
    return None


def _check_text(value: Any) -> Any:
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        raise PydanticCustomError(INVALID_TEXT, "{reason}", {"reason": problem})
    return value


def json_problem(value: Any, *, max_values: int | None = None) -> str | None:
    """What keeps a parsed JSON or YAML value from being stored and sent back, or None.

    One walk over every key and value: text with a :func:`text_problem`, a number that is not
    finite (NaN and the infinities have no JSON spelling, and PostgreSQL's JSON type refuses them),
    and, with ``max_values``, more values than that (YAML aliases can make a small document expand
    exponentially; a shared value counts each time, and the walk stops there). The answer is a
    phrase about the whole value: "holds a key or value that contains a NUL byte".
    """
    stack = [value]
    seen = 0
    while stack:  # without recursion: a hostile document may nest deeply
        item = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            return f"has more than {max_values} values"
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                return f"holds a key or value that {problem}"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"holds a number that is not finite ({item})"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def finite_json(value: Any) -> Any:
    """``value`` with every number that is not finite replaced by None (JSON's null), for what a
    process sends of its own: a diverged training's NaN loss is reported, not refused."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(item) for item in value]
    return value


def _check_json(value: Any) -> Any:
    if (problem := json_problem(value)) is not None:
        raise PydanticCustomError(INVALID_JSON_VALUE, "{reason}", {"reason": problem})
    return value


Text = Annotated[str, BeforeValidator(_check_text)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_check_json)]
# A number on the wire: NaN and the infinities are refused (422) like any other bad value.
FiniteFloat = Annotated[float, AllowInfNan(False)]
