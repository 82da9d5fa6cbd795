"""configure_logging: one JSON line per event, stdlib records included, exceptions rendered; what the
backend logs of a refused request (never its token or body)."""

from __future__ import annotations

import io
import json
import logging

from pydantic import SecretStr

from ktrdr.logs import configure_logging, get_logger
from ktrdr.settings import Settings
from tests.control.backend_fixtures import StartBackend


def test_json_lines_for_structlog_and_stdlib_records() -> None:
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream)
    try:
        get_logger("ktrdr.test").info("operation.started", operation_id="op_1")
        logging.getLogger("uvicorn.error").info("server up")
        get_logger("ktrdr.test").debug("hidden at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            get_logger("ktrdr.test").exception("operation.crashed")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        import structlog

        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert [line["event"] for line in lines] == ["operation.started", "server up", "operation.crashed"]
    assert (
        lines[0]["operation_id"] == "op_1"
        and lines[0]["level"] == "info"
        and lines[0]["logger"] == "ktrdr.test"
    )
    assert lines[1]["logger"] == "uvicorn.error"
    assert "ValueError: boom" in lines[2]["exception"]


async def test_a_refused_request_is_logged_without_its_token_or_body(start_backend: StartBackend) -> None:
    """The backend logs why a request was refused (route, code, field), never the secrets it carried."""
    import structlog

    token, wrong_token = "tok-CURRENT-5e1f", "tok-WRONG-77aa"
    markers = ["BODY-MARKER-name", "BODY-MARKER-json", "BODY-MARKER-field"]
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="DEBUG"), stream=stream)
    try:
        async with start_backend(api_token=SecretStr(token)) as harness:
            auth = {"Authorization": f"Bearer {token}"}
            requests = [
                # a refused name (400), with a secret-looking value in another field
                {"strategy_name": "x\x00y", "model_path": markers[0]},
                # a field that does not validate (422)
                {"strategy_name": "rsi_macd_trend", "commission": markers[2]},
            ]
            for body in requests:
                answer = await harness.client.post("/api/v1/backtests/start", json=body, headers=auth)
                assert answer.status_code in (400, 422), answer.text
            malformed = await harness.client.post(
                "/api/v1/trainings/start",
                # not JSON: FastAPI keeps the raw body on the error it raises
                content=f'{{"strategy_name": "{markers[1]}"'.encode(),
                headers={**auth, "content-type": "application/json"},
            )
            assert malformed.status_code == 422
            refused = await harness.client.post(
                "/api/v1/trainings/start", json={"strategy_name": "a"}, headers={"Authorization": wrong_token}
            )
            assert refused.status_code == 401
        text = stream.getvalue()
    finally:
        structlog.reset_defaults()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    events = [json.loads(line)["event"] for line in text.splitlines()]
    assert events.count("request.invalid") == 3 and "request.unauthorized" in events, events
    for secret in (token, wrong_token, *markers):
        assert secret not in text, f"{secret} leaked into the log"
