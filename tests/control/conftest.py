"""The backend test fixtures (see tests/control/backend_fixtures.py)."""

from tests.control.backend_fixtures import backend, pool, start_backend  # noqa: F401
