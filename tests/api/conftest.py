"""The backend test fixtures (see tests/registry/backend_fixtures.py)."""

from tests.registry.backend_fixtures import backend, pool, start_backend  # noqa: F401
