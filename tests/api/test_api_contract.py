"""Contract tests: every route's success shape, and each bad input's status, envelope and no-write."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from ktrdr.api.main import create_app
from ktrdr.errors import ConfigurationError
from ktrdr.protocol import WorkerType
from tests.control.backend_fixtures import (
    SAMPLE_CSV,
    Harness,
    StartBackend,
    make_settings,
    seed_dataset,
    seed_model,
)

VALID_STRATEGY = (Path(__file__).parents[2] / "ktrdr/strategy/bundled/rsi_macd_trend.yaml").read_text()


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return dict(body["error"])


def data_files(harness: Harness) -> list[str]:
    return sorted(p.name for p in harness.settings.data_dir.glob("*.csv"))


# --- runs: bad input writes no operation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/api/v1/trainings/start", {"strategy_name": "no_such_strategy"}, 404, "STRATEGY_NOT_FOUND"),
        ("/api/v1/trainings/start", {"strategy_name": "../../etc/passwd"}, 400, "INVALID_NAME"),
        (
            "/api/v1/trainings/start",
            {"strategy_name": "rsi_macd_trend", "symbol": "NOPE"},
            404,
            "DATA_NOT_FOUND",
        ),
        (
            "/api/v1/trainings/start",
            {"strategy_name": "rsi_macd_trend", "symbol": "../x"},
            400,
            "INVALID_NAME",
        ),
        (
            "/api/v1/trainings/start",
            {"strategy_name": "rsi_macd_trend", "timeframe": "7x"},
            400,
            "INVALID_NAME",
        ),
        (
            "/api/v1/trainings/start",
            {"strategy_name": "rsi_macd_trend", "start_date": "2024-02-01", "end_date": "2024-01-01"},
            400,
            "INVALID_DATE_RANGE",
        ),
        (
            "/api/v1/trainings/start",
            {"strategy_name": "rsi_macd_trend", "epochs": 3},
            422,
            "VALIDATION_ERROR",
        ),
        ("/api/v1/trainings/start", {}, 422, "VALIDATION_ERROR"),
        ("/api/v1/backtests/start", {"strategy_name": "rsi_macd_trend"}, 404, "MODEL_NOT_FOUND"),
        (
            "/api/v1/backtests/start",
            {"strategy_name": "rsi_macd_trend", "model_path": "../../outside"},
            400,
            "INVALID_NAME",
        ),
        (
            "/api/v1/backtests/start",
            {"strategy_name": "rsi_macd_trend", "initial_capital": -5},
            422,
            "VALIDATION_ERROR",
        ),
    ],
)
async def test_bad_run_requests_are_precise_and_write_nothing(
    backend: Harness, path: str, body: dict, status: int, code: str
) -> None:
    seed_dataset(backend.settings.data_dir)
    worker = backend.pool.add(WorkerType.TRAINING if "train" in path else WorkerType.BACKTESTING)
    await backend.register(worker)
    assert_envelope(await backend.client.post(path, json=body), status, code)
    assert await backend.rows() == 0
    assert worker.starts == []


async def test_validation_error_names_the_field(backend: Harness) -> None:
    error = assert_envelope(
        await backend.client.post("/api/v1/backtests/start", json={"strategy_name": "s", "commission": 2}),
        422,
        "VALIDATION_ERROR",
    )
    assert ["body", "commission"] in [e["loc"] for e in error["details"]["errors"]]


async def test_malformed_json_is_422(backend: Harness) -> None:
    response = await backend.client.post(
        "/api/v1/trainings/start", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_envelope(response, 422, "VALIDATION_ERROR")
    assert await backend.rows() == 0


# --- protocol-level errors ---------------------------------------------------------------------------


async def test_unknown_route_and_wrong_method_use_the_envelope(backend: Harness) -> None:
    assert_envelope(await backend.client.get("/api/v1/nowhere"), 404, "NOT_FOUND")
    assert_envelope(await backend.client.put("/api/v1/health"), 405, "METHOD_NOT_ALLOWED")
    assert_envelope(await backend.client.get("/api/v1/operations/op_missing"), 404, "OPERATION_NOT_FOUND")


@pytest.mark.parametrize("collection", ["operations", "workers", "strategies"])
async def test_a_trailing_slash_redirects_to_the_list(backend: Harness, collection: str) -> None:
    # An empty name is not a name: the one-item route must not match "/operations/".
    answer = await backend.client.get(f"/api/v1/{collection}/")
    assert answer.status_code == 307, answer.text
    assert answer.headers["location"].endswith(f"/api/v1/{collection}")
    followed = await backend.client.get(f"/api/v1/{collection}/", follow_redirects=True)
    assert followed.status_code == 200, followed.text


async def test_wrong_content_type_is_415(backend: Harness) -> None:
    seed_dataset(backend.settings.data_dir)
    form = await backend.client.post("/api/v1/trainings/start", data={"strategy_name": "rsi_macd_trend"})
    assert_envelope(form, 415, "UNSUPPORTED_MEDIA_TYPE")
    json_to_csv = await backend.client.post("/api/v1/data/AAPL/1d", json={"rows": []})
    assert_envelope(json_to_csv, 415, "UNSUPPORTED_MEDIA_TYPE")
    csv_to_yaml = await backend.client.post(
        "/api/v1/strategies/validate", content=b"a,b", headers={"content-type": "text/csv"}
    )
    assert_envelope(csv_to_yaml, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await backend.rows() == 0
    assert data_files(backend) == ["EURUSD_1h.csv"]


async def test_oversized_bodies_are_413_by_length_and_while_streaming(backend: Harness) -> None:
    limit = backend.settings.max_upload_bytes
    big_csv = SAMPLE_CSV.encode() + b"x" * limit
    declared = await backend.client.post(
        "/api/v1/data/AAPL/1d", content=big_csv, headers={"content-type": "text/csv"}
    )
    assert_envelope(declared, 413, "PAYLOAD_TOO_LARGE")

    async def chunks():  # no Content-Length: chunked transfer
        for _ in range(limit // 4096 + 2):
            yield b"y" * 4096

    streamed = await backend.client.post(
        "/api/v1/data/AAPL/1d", content=chunks(), headers={"content-type": "text/csv"}
    )
    assert_envelope(streamed, 413, "PAYLOAD_TOO_LARGE")
    big_json = b'{"strategy_name": "' + b"a" * backend.settings.max_body_bytes + b'"}'
    too_big = await backend.client.post(
        "/api/v1/trainings/start", content=big_json, headers={"content-type": "application/json"}
    )
    assert_envelope(too_big, 413, "PAYLOAD_TOO_LARGE")
    assert data_files(backend) == []
    assert await backend.rows() == 0


async def test_token_guards_mutations_but_not_reads(start_backend: StartBackend) -> None:
    async with start_backend(api_token=SecretStr("s3cret")) as harness:
        worker = harness.pool.add(WorkerType.TRAINING)
        no_token = await harness.register(worker)
        assert_envelope(no_token, 401, "UNAUTHORIZED")
        assert no_token.headers["www-authenticate"] == "Bearer"
        wrong = await harness.client.post(
            "/api/v1/workers/register", json=worker.registration(), headers={"Authorization": "Bearer nope"}
        )
        assert_envelope(wrong, 401, "UNAUTHORIZED")
        assert_envelope(await harness.client.delete("/api/v1/operations/op_x"), 401, "UNAUTHORIZED")
        assert (await harness.client.get("/api/v1/workers")).json() == []
        ok = await harness.client.post(
            "/api/v1/workers/register", json=worker.registration(), headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
        assert (await harness.client.get("/api/v1/health")).status_code == 200


async def test_production_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, env="production"))
    with pytest.raises(ConfigurationError, match="KTRDR_API_TOKEN"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "ktrdr.db").exists()


@pytest.mark.parametrize("token", ["tökén", "two words", "tab\there", "nul\x00"])
async def test_a_token_no_header_can_carry_is_refused_at_start_up(tmp_path: Path, token: str) -> None:
    app = create_app(make_settings(tmp_path, api_token=SecretStr(token)))
    with pytest.raises(ConfigurationError, match="KTRDR_API_TOKEN holds a character"):
        async with app.router.lifespan_context(app):
            pass
    assert not (tmp_path / "ktrdr.db").exists()


async def test_unexpected_errors_are_500_without_the_traceback(start_backend: StartBackend) -> None:
    async with start_backend(transport_errors=False) as harness:
        app: FastAPI = harness.app

        @app.get("/api/v1/boom")
        async def boom() -> None:
            raise RuntimeError("secret internals")

        response = await harness.client.get("/api/v1/boom")
        error = assert_envelope(response, 500, "INTERNAL_ERROR")
        assert "secret" not in response.text and error["message"] == "internal server error"


# --- strategies ---------------------------------------------------------------------------------------


async def test_strategies_list_get_and_validate(backend: Harness) -> None:
    listing = (await backend.client.get("/api/v1/strategies")).json()
    names = [s["name"] for s in listing["strategies"]]
    assert "rsi_macd_trend" in names
    assert all("path" not in s for s in listing["strategies"])
    one = (await backend.client.get("/api/v1/strategies/rsi_macd_trend")).json()
    assert one["strategy"]["name"] == "rsi_macd_trend" and one["features"]
    assert_envelope(await backend.client.get("/api/v1/strategies/nope"), 404, "STRATEGY_NOT_FOUND")
    assert_envelope(await backend.client.get("/api/v1/strategies/..secret"), 400, "INVALID_NAME")

    yaml_headers = {"content-type": "application/yaml"}
    valid = await backend.client.post(
        "/api/v1/strategies/validate", content=VALID_STRATEGY, headers=yaml_headers
    )
    assert valid.status_code == 200
    assert valid.json()["valid"] is True and valid.json()["features"] == one["features"]

    broken = VALID_STRATEGY.replace("training_data:", "training_dta:")
    verdict = await backend.client.post(
        "/api/v1/strategies/validate", content=broken, headers={"content-type": "text/plain"}
    )
    assert verdict.status_code == 200 and verdict.json()["valid"] is False
    assert any("training_d" in e["loc"] for e in verdict.json()["errors"])

    for not_a_document in (b"name: [unclosed", b"", b"- just\n- a list\n", b"\xff\xfe"):
        response = await backend.client.post(
            "/api/v1/strategies/validate", content=not_a_document, headers={"content-type": "text/yaml"}
        )
        assert_envelope(response, 422, "INVALID_STRATEGY")


# --- data --------------------------------------------------------------------------------------------


async def test_data_import_list_and_show(backend: Harness) -> None:
    csv_headers = {"content-type": "text/csv"}
    created = await backend.client.post("/api/v1/data/aapl/1d", content=SAMPLE_CSV, headers=csv_headers)
    assert created.status_code == 201, created.text
    assert created.json()["dataset"]["rows"] == 24 and created.json()["dataset"]["symbol"] == "AAPL"
    listed = (await backend.client.get("/api/v1/data")).json()["datasets"]
    assert [(d["symbol"], d["timeframe"], d["rows"]) for d in listed] == [("AAPL", "1d", 24)]
    shown = (await backend.client.get("/api/v1/data/AAPL/1d")).json()["dataset"]
    assert shown["start"].startswith("2024-01-01T00:00")

    exists = await backend.client.post("/api/v1/data/AAPL/1d", content=SAMPLE_CSV, headers=csv_headers)
    assert_envelope(exists, 409, "CONFLICT")
    shorter = "\n".join(SAMPLE_CSV.splitlines()[:5]) + "\n"
    replaced = await backend.client.post(
        "/api/v1/data/AAPL/1d", params={"overwrite": "true"}, content=shorter, headers=csv_headers
    )
    assert replaced.status_code == 201
    assert replaced.json()["dataset"]["rows"] == 4
    assert_envelope(await backend.client.get("/api/v1/data/MSFT/1d"), 404, "DATA_NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "content", "status", "code"),
    [
        ("/api/v1/data/..etc/1d", SAMPLE_CSV, 400, "INVALID_NAME"),
        ("/api/v1/data/MSFT/13q", SAMPLE_CSV, 400, "INVALID_NAME"),
        (
            "/api/v1/data/MSFT/1d",
            "timestamp,open,high,low,close,volume\n2024-01-01,1,0.5,2,1,1\n",
            422,
            "INVALID_DATA",
        ),
        ("/api/v1/data/MSFT/1d", "not,a,csv\n", 422, "INVALID_DATA"),
    ],
)
async def test_bad_imports_write_no_file(
    backend: Harness, path: str, content: str, status: int, code: str
) -> None:
    response = await backend.client.post(path, content=content, headers={"content-type": "text/csv"})
    assert_envelope(response, status, code)
    assert data_files(backend) == []
    assert not any(backend.settings.data_dir.rglob("*.csv"))


# --- models ------------------------------------------------------------------------------------------


async def test_models_list_and_metadata(backend: Harness) -> None:
    assert (await backend.client.get("/api/v1/models")).json()["models"] == []
    seed_model(backend.settings)
    models = (await backend.client.get("/api/v1/models")).json()["models"]
    assert [(m["strategy"], m["timeframe"], m["version"], m["is_latest"]) for m in models] == [
        ("rsi_macd_trend", "1h", 1, True)
    ]
    assert "path" not in models[0]
    latest = (await backend.client.get("/api/v1/models/rsi_macd_trend/1h")).json()
    assert latest["metadata"]["symbol"] == "EURUSD"
    pinned = await backend.client.get("/api/v1/models/rsi_macd_trend/1h", params={"version": 1})
    assert pinned.status_code == 200
    assert_envelope(
        await backend.client.get("/api/v1/models/rsi_macd_trend/1h", params={"version": 9}),
        404,
        "MODEL_NOT_FOUND",
    )
    assert_envelope(await backend.client.get("/api/v1/models/rsi_macd_trend/1d"), 404, "MODEL_NOT_FOUND")
    assert_envelope(await backend.client.get("/api/v1/models/..x/1h"), 400, "INVALID_NAME")
