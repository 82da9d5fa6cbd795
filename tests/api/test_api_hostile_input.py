"""Hostile text in every name-taking field of every backend route, property-based.

For each field that names something on disk or in the store, every value of
tests/hostile_text.py is answered 400 INVALID_NAME in the envelope, naming that field, and
leaves the data directory and the database as they were. Free text that is stored (a cancel
reason, a worker's report and registration) is refused with 422 when it holds a NUL byte or a
lone surrogate, and a JSON object (a report's result or progress, a registration's capabilities)
when it holds a number JSON cannot spell (NaN, Infinity). Never a 5xx. The backend runs with a
free worker of each type, so a start that slipped through would really create and dispatch an
operation, and with one running operation, so a report or a cancel that slipped through would
really change it. On SQLite, and on PostgreSQL (which refuses NUL in text and non-finite numbers
in JSON) where the local server answers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ktrdr.api.main import create_app
from ktrdr.names import text_problem
from ktrdr.protocol import WorkerType
from ktrdr.settings import Settings
from tests.control.backend_fixtures import (
    make_settings,
    postgres_database,
    seed_dataset,
    seed_model,
    serve_in_thread,
)
from tests.control.fake_worker import FakeWorker, FakeWorkerPool
from tests.hostile_text import (
    HOSTILE,
    STRATEGY_SPOTS,
    hostile_names,
    hostile_text,
    in_url,
    non_finite_numbers,
    strategy_with,
    unstorable_json_values,
)

JSON = {"content-type": "application/json"}


@dataclass
class Served:
    client: httpx.Client
    settings: Settings
    trainer: FakeWorker
    tester: FakeWorker
    running: str  # an operation running on the trainer
    baseline: tuple[Any, ...] = ()  # snapshot() after the set-up: no refused request may change it


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with postgres_database() if request.param == "postgres" else contextlib.nullcontext() as db_url:
        data_dir = tmp_path_factory.mktemp("hostile") / "data"
        settings = make_settings(data_dir, db_url=db_url, worker_health_check_interval=0.5)
        seed_dataset(data_dir)
        seed_model(settings)
        pool = FakeWorkerPool()
        trainer = pool.add(WorkerType.TRAINING, worker_id="trainer")
        tester = pool.add(WorkerType.BACKTESTING, worker_id="tester")
        app = create_app(settings, worker_transport=pool.transport())
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            for worker in (trainer, tester):
                assert client.post("/api/v1/workers/register", json=worker.registration()).status_code == 200
            started = client.post("/api/v1/trainings/start", json={"strategy_name": "rsi_macd_trend"})
            assert started.status_code == 200, started.text
            served = Served(client, settings, trainer, tester, started.json()["operation_id"])
            served.baseline = snapshot(served)
            yield served


def snapshot(served: Served) -> tuple[Any, ...]:
    """What a request must not change: files under the data directory, operations, workers."""
    root = served.settings.data_dir
    files = {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("ktrdr.db")  # SQLite's own files
    }
    listed = served.client.get("/api/v1/operations", params={"limit": 1000}).json()["data"]
    operations = sorted(
        (o["operation_id"], o["status"], o["error_message"], json.dumps(o["result"])) for o in listed
    )
    workers = sorted(
        (w["worker_id"], w["endpoint_url"], json.dumps(w["capabilities"]))
        for w in served.client.get("/api/v1/workers").json()
    )
    starts = (len(served.trainer.starts), len(served.tester.starts), len(served.trainer.cancels))
    return files, operations, workers, starts


def send_json(client: httpx.Client, method: str, url: str, body: dict[str, Any]) -> httpx.Response:
    # json.dumps escapes lone surrogates (\ud800), as any JSON client may send them.
    return client.request(method, url, content=json.dumps(body), headers=JSON)


def assert_refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert body["success"] is False and body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- names -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NameField:
    """One name-taking field of one route: ``send(served, value)`` puts ``value`` into it."""

    route: str
    field: str  # as the error's details.field names it
    send: Callable[[Served, str], httpx.Response]
    in_url: bool = False
    last_segment: bool = False  # a "/" here would name another URL (the field before it)


def _start(kind: str, field: str, **base: Any) -> Callable[[Served, str], httpx.Response]:
    body = {"strategy_name": "rsi_macd_trend", **base}
    return lambda s, v: send_json(s.client, "POST", f"/api/v1/{kind}/start", {**body, field: v})


def _report(s: Served, value: str) -> httpx.Response:
    report = {"operation_id": value, "status": "completed"}
    return send_json(s.client, "PATCH", f"/api/v1/operations/{s.running}/status", report)


def _register(build: Callable[[str], dict[str, Any]]) -> Callable[[Served, str], httpx.Response]:
    return lambda s, v: send_json(
        s.client, "POST", "/api/v1/workers/register", {**s.tester.registration(), **build(v)}
    )


CSV = {"content-type": "text/csv"}
NAME_FIELDS = [
    NameField("POST /trainings/start", "strategy_name", _start("trainings", "strategy_name")),
    NameField("POST /trainings/start", "symbol", _start("trainings", "symbol")),
    NameField("POST /trainings/start", "timeframe", _start("trainings", "timeframe")),
    NameField("POST /backtests/start", "strategy_name", _start("backtests", "strategy_name")),
    NameField("POST /backtests/start", "symbol", _start("backtests", "symbol")),
    NameField("POST /backtests/start", "timeframe", _start("backtests", "timeframe")),
    NameField("POST /backtests/start", "model_path", _start("backtests", "model_path")),
    NameField(
        "GET /strategies/{name}", "name", lambda s, v: s.client.get(f"/api/v1/strategies/{in_url(v)}"), True
    ),
    NameField(
        "GET /data/{symbol}/{timeframe}",
        "symbol",
        lambda s, v: s.client.get(f"/api/v1/data/{in_url(v)}/1h"),
        True,
    ),
    NameField(
        "GET /data/{symbol}/{timeframe}",
        "timeframe",
        lambda s, v: s.client.get(f"/api/v1/data/EURUSD/{in_url(v)}"),
        True,
        True,
    ),
    NameField(
        "POST /data/{symbol}/{timeframe}",
        "symbol",
        lambda s, v: s.client.post(f"/api/v1/data/{in_url(v)}/1h", content=b"", headers=CSV),
        True,
    ),
    NameField(
        "POST /data/{symbol}/{timeframe}",
        "timeframe",
        lambda s, v: s.client.post(f"/api/v1/data/EURUSD/{in_url(v)}", content=b"", headers=CSV),
        True,
        True,
    ),
    NameField(
        "GET /models/{strategy}/{timeframe}",
        "strategy",
        lambda s, v: s.client.get(f"/api/v1/models/{in_url(v)}/1h"),
        True,
    ),
    NameField(
        "GET /models/{strategy}/{timeframe}",
        "timeframe",
        lambda s, v: s.client.get(f"/api/v1/models/rsi_macd_trend/{in_url(v)}"),
        True,
        True,
    ),
    NameField(
        "GET /models/{strategy}/{timeframe}?version=",
        "version",
        lambda s, v: s.client.get("/api/v1/models/rsi_macd_trend/1h", params={"version": v}),
        True,
    ),
    NameField(
        "GET /operations/{operation_id}",
        "operation_id",
        lambda s, v: s.client.get(f"/api/v1/operations/{in_url(v)}"),
        True,
    ),
    NameField(
        "DELETE /operations/{operation_id}",
        "operation_id",
        lambda s, v: s.client.delete(f"/api/v1/operations/{in_url(v)}"),
        True,
    ),
    NameField(
        "PATCH /operations/{operation_id}/status (path)",
        "operation_id",
        lambda s, v: send_json(
            s.client,
            "PATCH",
            f"/api/v1/operations/{in_url(v)}/status",
            {"operation_id": s.running, "status": "completed"},
        ),
        True,
    ),
    NameField("PATCH /operations/{operation_id}/status (body)", "operation_id", _report),
    NameField(
        "GET /workers/{worker_id}",
        "worker_id",
        lambda s, v: s.client.get(f"/api/v1/workers/{in_url(v)}"),
        True,
    ),
    NameField("POST /workers/register", "worker_id", _register(lambda v: {"worker_id": v})),
    NameField(
        "POST /workers/register",
        "current_operation_id",
        _register(lambda v: {"current_operation_id": v}),
    ),
    NameField(
        "POST /workers/register",
        "completed_operations.0.operation_id",
        _register(lambda v: {"completed_operations": [{"operation_id": v, "status": "completed"}]}),
    ),
]


@pytest.mark.parametrize("case", NAME_FIELDS, ids=lambda c: f"{c.route} {c.field}")
@HOSTILE
@given(data=st.data())
def test_hostile_names_are_400_naming_the_field_and_change_nothing(
    served: Served, case: NameField, data: st.DataObject
) -> None:
    value = data.draw(hostile_names(surrogates=not case.in_url), label="value")
    if case.in_url and not value:
        value = "\\"  # an empty segment names another URL ("/operations/" redirects to the list)
    if case.last_segment and "/" in value:
        value = value.replace("/", "\\")  # still hostile, and still in this segment
    error = assert_refused(case.send(served, value), 400, "INVALID_NAME")
    assert error["details"]["field"] == case.field, error
    assert snapshot(served) == served.baseline


# --- free text ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextField:
    route: str
    loc: list[str]
    send: Callable[[Served, str], httpx.Response]


def _report_with(build: Callable[[str], dict[str, Any]]) -> Callable[[Served, str], httpx.Response]:
    return lambda s, v: send_json(
        s.client,
        "PATCH",
        f"/api/v1/operations/{s.running}/status",
        {"operation_id": s.running, "status": "failed", **build(v)},
    )


TEXT_FIELDS = [
    TextField(
        "DELETE /operations/{id}?reason=",
        ["query", "reason"],
        lambda s, v: s.client.delete(f"/api/v1/operations/{s.running}", params={"reason": v}),
    ),
    TextField(
        "PATCH status error_message", ["body", "error_message"], _report_with(lambda v: {"error_message": v})
    ),
    TextField("PATCH status result", ["body", "result"], _report_with(lambda v: {"result": {"note": [v]}})),
    TextField(
        "PATCH status progress",
        ["body", "progress", "current_step"],
        _report_with(lambda v: {"progress": {"current_step": v}}),
    ),
    TextField(
        "POST /workers/register capabilities",
        ["body", "capabilities"],
        _register(lambda v: {"capabilities": {v: True}}),
    ),
    TextField(
        "POST /workers/register endpoint_url",
        ["body", "endpoint_url"],
        _register(lambda v: {"endpoint_url": "http://tester" + v}),
    ),
]


@pytest.mark.parametrize("case", TEXT_FIELDS, ids=lambda c: c.route)
@HOSTILE
@given(value=hostile_text())
def test_text_a_store_cannot_take_is_422_and_changes_nothing(
    served: Served, case: TextField, value: str
) -> None:
    if case.loc[0] == "query":  # a URL carries no lone surrogate (UTF-8 cannot encode one); a NUL it does
        value = "".join(c for c in value if not "\ud800" <= c <= "\udfff") + "\x00"
    error = assert_refused(case.send(served, value), 422, "VALIDATION_ERROR")
    assert case.loc in [e["loc"][: len(case.loc)] for e in error["details"]["errors"]], error
    assert snapshot(served) == served.baseline


@dataclass(frozen=True)
class JsonField:
    route: str
    loc: list[str]
    send: Callable[[Served, Any], httpx.Response]
    values: Callable[[], st.SearchStrategy[Any]] = unstorable_json_values


# A worker's report and registration: where a diverged training's NaN loss would travel.
JSON_FIELDS = [
    JsonField(
        "PATCH status result",
        ["body", "result"],
        _report_with(lambda v: {"result": {"metrics": {"loss": v}}}),
    ),
    JsonField(
        "PATCH status progress.context",
        ["body", "progress", "context"],
        _report_with(lambda v: {"progress": {"context": {"val_loss": v}}}),
    ),
    JsonField(
        "PATCH status progress.percentage",
        ["body", "progress", "percentage"],
        _report_with(lambda v: {"progress": {"percentage": v}}),
        non_finite_numbers,
    ),
    JsonField(
        "POST /workers/register capabilities",
        ["body", "capabilities"],
        _register(lambda v: {"capabilities": {"gpu": v}}),
    ),
    JsonField(
        "POST /workers/register completed result",
        ["body", "completed_operations", "0", "result"],
        _register(
            lambda v: {
                "completed_operations": [
                    {"operation_id": "op_done", "status": "completed", "result": {"x": v}}
                ]
            }
        ),
    ),
]


@pytest.mark.parametrize("case", JSON_FIELDS, ids=lambda c: c.route)
@HOSTILE
@given(data=st.data())
def test_json_a_store_cannot_take_is_422_and_changes_nothing(
    served: Served, case: JsonField, data: st.DataObject
) -> None:
    """NaN and the infinities too: JSON has no spelling for them, and PostgreSQL's JSON refuses them."""
    value = data.draw(case.values(), label="value")
    error = assert_refused(case.send(served, value), 422, "VALIDATION_ERROR")
    assert case.loc in [e["loc"][: len(case.loc)] for e in error["details"]["errors"]], error
    assert snapshot(served) == served.baseline


# --- inside a strategy document ------------------------------------------------------------------------


@pytest.mark.parametrize("spot", list(STRATEGY_SPOTS))
@HOSTILE
@given(value=hostile_names() | hostile_text())
def test_hostile_text_inside_a_strategy_document_is_judged_never_a_server_error(
    served: Served, spot: str, value: str
) -> None:
    document = strategy_with(spot, value)
    answer = served.client.post(
        "/api/v1/strategies/validate", content=document.encode(), headers={"content-type": "application/yaml"}
    )
    if spot == "description" and text_problem(value) is None:
        assert answer.status_code == 200 and answer.json()["valid"] is True, answer.text[:300]
        return
    if answer.status_code == 200:  # a mapping judged key by key: the bad key is named
        verdict = answer.json()
        assert verdict["valid"] is False and verdict["errors"], verdict
    else:
        assert_refused(answer, 422, "INVALID_STRATEGY")
    assert snapshot(served) == served.baseline


def test_the_fixture_really_dispatches_and_records(served: Served) -> None:
    """The properties above are meaningful: valid requests of the same shapes do change the state.

    Wherever it runs in the module: it frees the worker it used again and takes a new baseline, so
    the tests after it still compare with the state they start from."""
    assert snapshot(served) == served.baseline
    try:
        started = served.client.post(
            "/api/v1/backtests/start",
            json={"strategy_name": "rsi_macd_trend", "model_path": "rsi_macd_trend/1h_v1"},
        )
        assert started.status_code == 200, started.text
        assert snapshot(served) != served.baseline
        cancelled = served.client.delete(f"/api/v1/operations/{started.json()['operation_id']}")
        assert cancelled.json()["data"]["status"] == "cancelled"
    finally:
        served.tester.current = None  # free for the next start, whatever happened above
        served.baseline = snapshot(served)
