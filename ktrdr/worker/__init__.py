"""The worker process: what runs inside a backtest or training worker, never inside the backend.

``app`` (the base app every worker builds on), ``runtime`` (one operation at a time in a compute
thread), ``registration`` + ``backend_client`` (register with the backend and stay registered),
``deps_check`` (fail fast without the compute stack), and the two workers themselves:
``backtest_worker`` and ``training_worker``, which hand the domain packages' compute to the runtime.

It speaks to the backend only through :mod:`ktrdr.protocol` and never imports the control plane
(:mod:`ktrdr.control`); the contracts in pyproject.toml hold that rule.
"""
