"""Structured logging for every ktrdr process (backend, workers, CLI): one call, ``configure_logging``.

structlog renders each event as one JSON line (``log_format="json"``, the default for servers) or
as coloured console text. Records from the standard library (uvicorn, alembic, httpx) go through
the same renderer, so a process writes one uniform stream to stderr.

structlog is imported on first use, not with this module: it pulls in rich, which would double
the backend's import time (see bench/). ``get_logger`` therefore returns a lazy proxy.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ktrdr.settings import Settings

# Libraries that log every request or connection at INFO; they only speak up at WARNING.
_CHATTY_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "aiosqlite", "asyncio")


def _shared_processors() -> list[Any]:
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Route structlog and stdlib logging to one renderer at ``settings.log_level``.

    Safe to call more than once (the last call wins); ``stream`` defaults to stderr.
    """
    import structlog

    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any
    if settings.log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()

    shared = _shared_processors()
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info if settings.log_format == "json" else _passthrough,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("ktrdr")

    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == "ktrdr"]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # uvicorn installs its own handlers and levels; let its records reach ours instead of printing
    # twice, at the level KTRDR_LOG_LEVEL asks for (access logs stay at WARNING, as above).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers.clear()
        uv_logger.propagate = True
        if name != "uvicorn.access":
            uv_logger.setLevel(logging.NOTSET)


def _passthrough(_logger: Any, _name: str, event_dict: Any) -> Any:
    return event_dict


class _LazyLogger:
    """Stands in for ``structlog.stdlib.get_logger(name)`` until a method is first used."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.stdlib.get_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger for ``name`` (the module's ``__name__`` by convention), created lazily."""
    return _LazyLogger(name)
