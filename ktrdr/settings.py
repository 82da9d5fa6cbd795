"""Process configuration, read from the environment (prefix ``KTRDR_``) by pydantic-settings.

Names follow the original system where one existed (``KTRDR_API_PORT``, ``KTRDR_WORKER_PORT``,
``KTRDR_API_CLIENT_BASE_URL``, ``KTRDR_DATA_DIR``...). Derived locations (models, strategies, the
embedded SQLite database) default to places under ``data_dir`` so one variable moves everything.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The port each server role listens on unless told otherwise. The image role table in
# pyproject.toml ([tool.ktrdr.images.*]) must agree; tests/test_roles.py checks it.
DEFAULT_PORTS: dict[str, int] = {"backend": 8000, "backtest-worker": 5003, "training-worker": 5004}


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ktrdr"


class Settings(BaseSettings):
    """All settings of every ktrdr process; each reads only what it needs."""

    model_config = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")

    env: Literal["development", "production"] = "development"

    # Storage
    data_dir: Path = Field(default_factory=_default_data_dir)
    models_dir: Path | None = None
    strategies_dir: Path | None = None
    db_url: str | None = None

    # Backend API
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_PORTS["backend"]
    api_prefix: str = "/api/v1"
    api_token: SecretStr | None = None
    # Still accepted while a new api_token rolls out (docs/deploy.md, "Rotating the token").
    api_token_previous: SecretStr | None = None
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024

    # Where clients (CLI, workers) find the backend
    api_client_base_url: str = "http://127.0.0.1:8000/api/v1"

    # Workers
    worker_id: str | None = None
    worker_host: str = "127.0.0.1"
    worker_port: int | None = None
    worker_public_base_url: str | None = None
    worker_health_check_interval: float = 10.0
    worker_health_check_timeout: float = 5.0
    worker_health_check_failures: int = 3
    worker_removal_threshold: float = 300.0

    # `ktrdr healthcheck` with no URL probes this (the images set it from the role table)
    healthcheck_url: str | None = None

    # Logging
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir or self.data_dir / "models"

    @property
    def resolved_strategies_dir(self) -> Path:
        return self.strategies_dir or self.data_dir / "strategies"

    @property
    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.data_dir / 'ktrdr.db'}"

    @property
    def backend_base_url(self) -> str:
        """The backend's root URL (``api_client_base_url`` without a trailing ``/api/v1``)."""
        url = self.api_client_base_url.rstrip("/")
        return url.removesuffix(self.api_prefix)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
