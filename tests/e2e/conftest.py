"""A real stack for the end-to-end tests: backend + both workers as uvicorn processes on 127.0.0.1.

Free ports, a temporary data directory with the sample data and two test strategies (one that
trains in seconds, one that trains until it is stopped), a bearer token held by every process
and presented by the ``api`` client, and a short health interval so faults are noticed quickly.
One stack serves the whole module; tests that break a server restore it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import AUTH, E2E_TOKEN, HEALTH_INTERVAL_S


def _strategy(name: str, **training: Any) -> str:
    import yaml

    from ktrdr.strategy.loader import bundled_strategies_dir

    document = yaml.safe_load((bundled_strategies_dir() / "rsi_macd_trend.yaml").read_text())
    document["name"] = name
    document["training"].update(training)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip("torch")
    from ktrdr.cli.stack import LocalStack, StackPorts, free_ports
    from ktrdr.data.sample import install_sample_data

    root = tmp_path_factory.mktemp("e2e")
    data_dir = root / "data"
    install_sample_data(data_dir)
    strategies = data_dir / "strategies"
    strategies.mkdir()
    (strategies / "e2e_quick.yaml").write_text(_strategy("e2e_quick", epochs=2))
    endless = {"epochs": 5000, "early_stopping": {"patience": 5000, "min_delta": 0.0}}
    (strategies / "e2e_endless.yaml").write_text(_strategy("e2e_endless", **endless))
    env = {
        "KTRDR_WORKER_HEALTH_CHECK_INTERVAL": str(HEALTH_INTERVAL_S),
        "KTRDR_WORKER_HEALTH_CHECK_TIMEOUT": "2",
        "KTRDR_LOG_FORMAT": "console",
        "KTRDR_API_TOKEN": E2E_TOKEN,
    }
    local = LocalStack(data_dir, StackPorts(*free_ports(3)), log_dir=root / "logs", env=env, isolated=True)
    with local:
        local.start()
        local.wait_ready(timeout=120)
        yield local


@pytest.fixture
def api(stack: Any) -> Iterator[Any]:
    import httpx

    with httpx.Client(base_url=stack.api_url, headers=AUTH, timeout=10) as client:
        yield client
