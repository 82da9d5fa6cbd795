"""Backtest and training results as pictures, drawn by the CLI from the result the backend stored.

- :mod:`ktrdr.report.results`: reads a stored result, of this version or an older one, into what
  the charts draw (older results lack some curves: the charts draw what is there and say what is
  not), and the rows of its metrics table.
- :mod:`ktrdr.report.terminal`: the terminal chart after a backtest (plotille), or a few lines of
  text when the output is not a terminal.
- :mod:`ktrdr.report.html`: one self-contained HTML file (plotly, its JavaScript inlined), for a
  backtest or a training.

Only the CLI imports this package (an import-linter contract), and the charting libraries come
from the ``report`` extra, which no image's role takes: :func:`require` names the extra when it is
missing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ktrdr.errors import MissingDependencyError

INSTALL_HINT = "pip install 'ktrdr[report]' (in a checkout: uv sync --extra report)"


def require(module: str, purpose: str) -> ModuleType:
    """Import a module of the ``report`` extra, or say plainly that ``purpose`` needs the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the 'report' extra ({exc}): {INSTALL_HINT}",
            details={"module": module, "extra": "report"},
        ) from exc
