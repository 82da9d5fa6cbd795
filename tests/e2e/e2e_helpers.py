"""Helpers shared by the end-to-end tests (polling the backend, collecting the servers' logs)."""

from __future__ import annotations

import time
from typing import Any

HEALTH_INTERVAL_S = 0.5
# The stack runs with a token, as in production: every process holds it, every client presents it.
E2E_TOKEN = "e2e-token-3f9c0d"
AUTH = {"Authorization": f"Bearer {E2E_TOKEN}"}


def wait_for_operation(
    api: Any, operation_id: str, predicate: Any, timeout: float, what: str
) -> dict[str, Any]:
    """Poll the backend until ``predicate(operation)`` holds; fail with the last state if it never does."""
    deadline = time.monotonic() + timeout
    operation: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = api.get(f"/operations/{operation_id}")
        if answer.status_code == 200:
            operation = answer.json()["data"]
            if predicate(operation):
                return operation
        time.sleep(0.2)
    raise AssertionError(f"{what}: not reached within {timeout} s; last state {operation}")


def logs_of(stack: Any) -> str:
    return "\n".join(f"--- {role} ---\n{stack.log_tail(role, 40)}" for role in stack.processes)
