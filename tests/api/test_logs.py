"""configure_logging: one JSON line per event, stdlib records included, exceptions rendered."""

from __future__ import annotations

import io
import json
import logging

from ktrdr.logs import configure_logging, get_logger
from ktrdr.settings import Settings


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
