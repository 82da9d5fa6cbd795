"""The workers' start-up check: fail fast, with a clear message, when the heavy compute stack is absent.

The backend image deliberately has no torch, numpy or pandas; starting a worker there (or in a
``uv sync`` without the ``ml`` extra) must say so at once instead of failing on the first request.
"""

from __future__ import annotations

import importlib

from ktrdr.errors import MissingDependencyError

ML_MODULES: tuple[str, ...] = ("numpy", "pandas", "torch")


def check_ml_dependencies(role: str, modules: tuple[str, ...] = ML_MODULES) -> None:
    """Import each of ``modules``; raise :class:`MissingDependencyError` naming the first that fails."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingDependencyError(
                f"{role} needs the 'ml' extra: {exc}. Install it with `uv sync --extra ml`, "
                f"or run the worker image that ships it.",
                details={"role": role, "module": name},
            ) from exc
