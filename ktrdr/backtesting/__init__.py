"""Backtesting: run a trained model over history and measure what its decisions would have earned.

Importing this package loads no torch, numpy or pandas; :mod:`ktrdr.backtesting.engine`
(``run_backtest``) and :mod:`ktrdr.backtesting.metrics` import them when imported.
"""
