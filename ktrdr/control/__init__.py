"""The backend's control plane: everything the backend runs to keep operations and workers in order.

- operations: ``models`` (the record the API serves), ``tables`` + ``migrations`` (the schema),
  ``store`` (every query), ``lifecycle`` (reports, progress, cancels, reconciliation);
- workers: ``registry`` (who is registered and healthy), ``dispatch`` (hand an operation to a free
  worker), ``worker_client`` (the backend's calls to a worker).

It speaks to workers only through :mod:`ktrdr.protocol` and never imports the worker process
(:mod:`ktrdr.worker`); only the backend imports it. It needs SQLAlchemy and an async driver,
never numpy, pandas or torch (the contracts in pyproject.toml hold both rules).
"""
