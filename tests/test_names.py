"""ktrdr.names: the one check of every name that reaches a file path or the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from ktrdr.errors import InvalidNameError
from ktrdr.names import (
    INVALID_NAME,
    MODEL_PATH,
    MODEL_VERSION,
    OPERATION_ID,
    STRATEGY_NAME,
    SYMBOL,
    TIMEFRAME,
    WORKER_ID,
    JsonObject,
    ModelPath,
    ModelVersion,
    NameRule,
    Text,
    check_name,
    json_problem,
    name_problem,
)
from tests.hostile_text import HOSTILE, hostile_names, hostile_text, unstorable_json_values

RULES = [STRATEGY_NAME, SYMBOL, TIMEFRAME, MODEL_PATH, MODEL_VERSION, OPERATION_ID, WORKER_ID]
GOOD = {
    STRATEGY_NAME: ["rsi_macd_trend", "A", "x-1_y", "a" * 64],
    SYMBOL: ["EURUSD", "btc-usd", "BRK_B", "A" * 32],
    TIMEFRAME: ["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w"],
    MODEL_PATH: ["rsi_macd_trend/1h_v3", "rsi_macd_trend/1h_v3/model.pt", "s/1h_latest", "a..b/c"],
    MODEL_VERSION: ["1", "42", "999999999"],
    OPERATION_ID: ["op_" + "0123456789abcdef" * 2, "op_1"],
    WORKER_ID: ["training-local-5004", "backtesting-host.example-a1b2c3", "w:1"],
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
def test_good_names_pass(rule: NameRule) -> None:
    for value in GOOD[rule]:
        assert name_problem(value, rule) is None, value


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
@HOSTILE
@given(value=hostile_names())
def test_every_hostile_value_is_refused_by_every_rule(rule: NameRule, value: str) -> None:
    """The claim tests/hostile_text.py makes, so the property tests of the servers can rely on it."""
    assert name_problem(value, rule) is not None
    with pytest.raises(InvalidNameError) as refused:
        check_name(value, rule, field="f")
    assert refused.value.status_code == 400 and refused.value.details["field"] == "f"
    refused.value.message.encode("utf-8")  # showable: controls and lone surrogates come escaped


# Any text, and the names each rule accepts (a valid name of one kind is a good probe of another).
_ANY_TEXT = st.one_of(st.text(max_size=80), *(st.from_regex(r.pattern, fullmatch=True) for r in RULES))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.kind)
@HOSTILE
@given(value=_ANY_TEXT)
# Non-ASCII text that upper-cases into ASCII: "SS", "FIX", "IBM" (Python's full case mapping).
@example(value="ß")
@example(value="ﬁx")
@example(value="\u0131bm")  # a dotless i
@example(value="eurusd\u017f")  # a long s: upper-cases to "S"
def test_any_text_is_judged_without_error_and_what_passes_stays_inside(rule: NameRule, value: str) -> None:
    """Whatever the text, a verdict (never an exception); a name that passes is a path inside its root."""
    if name_problem(value, rule) is not None:
        return
    root = Path("/srv/ktrdr-root")
    assert (root / value).resolve().is_relative_to(root)
    assert value.isascii() and value.isprintable() and "\\" not in value and "%" not in value


def test_the_message_says_what_and_why() -> None:
    with pytest.raises(InvalidNameError) as refused:
        check_name("../etc/passwd", MODEL_PATH, field="model_path")
    assert "invalid model path '../etc/passwd'" in refused.value.message
    assert "'.' or '..' path segment" in refused.value.message
    with pytest.raises(InvalidNameError) as refused:
        check_name("a\x00b", SYMBOL)
    assert "'a\\x00b'" in refused.value.message and "a NUL byte" in refused.value.message


def test_symbols_are_upper_cased() -> None:
    assert check_name("eurusd", SYMBOL) == "EURUSD"


@pytest.mark.parametrize("value", ["ß", "ﬁx", "\u0131bm", "Straße"])
def test_a_symbol_is_ascii_before_it_is_upper_cased(value: str) -> None:
    with pytest.raises(InvalidNameError) as refused:
        check_name(value, SYMBOL, field="symbol")
    assert "non-ASCII character" in refused.value.message


class _Request(BaseModel):
    model_path: ModelPath
    version: ModelVersion | None = None


def test_the_pydantic_types_carry_the_same_check_and_their_error_type() -> None:
    assert _Request(model_path="s/1h_v1", version="7").version == 7  # type: ignore[arg-type]
    for bad in (
        {"model_path": "/etc"},
        {"model_path": "s/1h_v1", "version": "0"},
        {"model_path": "s", "version": 0},
    ):
        with pytest.raises(PydanticValidationError) as refused:
            _Request.model_validate(bad)
        assert {e["type"] for e in refused.value.errors()} == {INVALID_NAME}
    schema = _Request.model_json_schema()["properties"]["model_path"]
    assert schema["pattern"] == MODEL_PATH.pattern and schema["maxLength"] == MODEL_PATH.max_length


@HOSTILE
@given(value=unstorable_json_values())
def test_a_json_object_refuses_what_a_store_cannot_take_at_any_depth(value: object) -> None:
    with pytest.raises(PydanticValidationError) as refused:
        TypeAdapter(JsonObject).validate_python({"k": [{"deep": value}]})
    assert {e["type"] for e in refused.value.errors()} == {"invalid_json_value"}
    assert json_problem({"k": value}) is not None
    finite = {"loss": 0.25, "huge": 1e308, "tiny": -5e-324, "n": [1, 2.5]}
    assert TypeAdapter(JsonObject).validate_python(finite) == finite


@HOSTILE
@given(value=hostile_text())
def test_free_text_refuses_what_a_store_cannot_take(value: str) -> None:
    with pytest.raises(PydanticValidationError):
        TypeAdapter(Text).validate_python(value)
    with pytest.raises(PydanticValidationError):
        TypeAdapter(JsonObject).validate_python({"k": [{"deep": value}]})
    assert TypeAdapter(Text).validate_python("plain text, accents é, tabs\tand newlines\n") is not None
