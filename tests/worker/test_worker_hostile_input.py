"""Hostile text in every name-taking field of every worker route, property-based.

Each real worker app (see the ``live`` fixture) answers every value of tests/hostile_text.py with
400 INVALID_NAME in the backend's envelope, naming the field; it starts nothing, writes nothing
under its data directory and reports nothing to the backend. Never a 5xx. Requests carry the
valid token, so what is judged is the name, not the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from worker_harness import LiveWorker

from ktrdr.strategy.loader import bundled_strategies_dir
from tests.hostile_text import HOSTILE, hostile_names, hostile_text, in_url, non_finite_numbers, strategy_with

STRATEGY_YAML = (bundled_strategies_dir() / "rsi_macd_trend.yaml").read_text()


def snapshot(live: LiveWorker) -> tuple[Any, ...]:
    """What a refused request must not change: the worker's operations, files, calls to the backend."""
    root = live.settings.data_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []
    operations = live.client.get("/api/v1/operations", headers=live.authed()).json()
    reports = [call for call in live.backend.calls if call[0] == "PATCH"]
    return files, operations, reports


def start(field: str) -> Callable[[LiveWorker, str], httpx.Response]:
    def send(live: LiveWorker, value: str) -> httpx.Response:
        body = {"operation_id": "op_1", "strategy_yaml": STRATEGY_YAML, "symbol": "EURUSD", "timeframe": "1h"}
        body[field] = value
        headers = {**live.authed(), "content-type": "application/json"}
        return live.client.post(live.start_path, content=json.dumps(body), headers=headers)

    return send


@dataclass(frozen=True)
class NameField:
    route: str
    field: str
    send: Callable[[LiveWorker, str], httpx.Response]
    in_url: bool = False
    roles: tuple[str, ...] = ("backtest-worker", "training-worker")


NAME_FIELDS = [
    NameField("POST start", "operation_id", start("operation_id")),
    NameField("POST start", "symbol", start("symbol")),
    NameField("POST start", "timeframe", start("timeframe")),
    NameField("POST /backtests/start", "model_path", start("model_path"), roles=("backtest-worker",)),
    NameField(
        "GET /api/v1/operations/{id}",
        "operation_id",
        lambda w, v: w.client.get(f"/api/v1/operations/{in_url(v)}", headers=w.authed()),
        True,
    ),
    NameField(
        "DELETE /api/v1/operations/{id}/cancel",
        "operation_id",
        lambda w, v: w.client.delete(f"/api/v1/operations/{in_url(v)}/cancel", headers=w.authed()),
        True,
    ),
]


# Each field on each worker that has it (``live`` is parametrized by role, here only where it fits).
NAME_CASES = [
    pytest.param(role, case, id=f"{role} {case.route} {case.field}")
    for case in NAME_FIELDS
    for role in case.roles
]


@pytest.mark.parametrize(("live", "case"), NAME_CASES, indirect=["live"])
@HOSTILE
@given(data=st.data())
def test_hostile_names_are_400_naming_the_field_and_start_nothing(
    live: LiveWorker, case: NameField, data: st.DataObject
) -> None:
    before = snapshot(live)
    value = data.draw(hostile_names(surrogates=not case.in_url), label="value")
    if case.in_url and not value:
        value = "\\"  # an empty segment names another URL ("/operations/" redirects to the list)
    answer = case.send(live, value)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    error = answer.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("INVALID_NAME", case.field)
    assert snapshot(live) == before == ([], [], [])


@pytest.mark.parametrize("live", ["backtest-worker"], indirect=True)
@pytest.mark.parametrize("field", ["initial_capital", "commission", "slippage"])
@HOSTILE
@given(value=non_finite_numbers())
def test_a_number_that_is_not_finite_is_422_and_starts_nothing(
    live: LiveWorker, field: str, value: float
) -> None:
    body = {"operation_id": "op_1", "strategy_yaml": STRATEGY_YAML, "symbol": "EURUSD", "timeframe": "1h"}
    body[field] = value  # json.dumps spells it NaN, Infinity or -Infinity, as Python clients do
    headers = {**live.authed(), "content-type": "application/json"}
    answer = live.client.post(live.start_path, content=json.dumps(body), headers=headers)
    assert answer.status_code == 422, (answer.status_code, answer.text[:300])
    assert ["body", field] in [e["loc"] for e in answer.json()["error"]["details"]["errors"]]
    assert snapshot(live) == ([], [], [])


@HOSTILE
@given(value=hostile_text())
def test_a_cancel_reason_the_backend_could_not_store_is_422(live: LiveWorker, value: str) -> None:
    reason = "".join(c for c in value if not "\ud800" <= c <= "\udfff") + "\x00"  # URLs carry no surrogate
    answer = live.client.delete(
        "/api/v1/operations/op_1/cancel", params={"reason": reason}, headers=live.authed()
    )
    assert answer.status_code == 422, answer.text[:300]
    assert ["query", "reason"] in [e["loc"] for e in answer.json()["error"]["details"]["errors"]]


@pytest.mark.parametrize("spot", ["name", "indicator id", "symbol"])
@HOSTILE
@given(value=hostile_names() | hostile_text())
def test_a_strategy_naming_something_with_hostile_text_is_refused_and_starts_nothing(
    live: LiveWorker, spot: str, value: str
) -> None:
    body = {
        "operation_id": "op_1",
        "strategy_yaml": strategy_with(spot, value),
        "symbol": "EURUSD",
        "timeframe": "1h",
    }
    headers = {**live.authed(), "content-type": "application/json"}
    answer = live.client.post(live.start_path, content=json.dumps(body), headers=headers)
    assert answer.status_code == 422, (answer.status_code, answer.text[:300])
    assert answer.json()["error"]["code"] == "INVALID_STRATEGY"
    assert snapshot(live) == ([], [], [])
