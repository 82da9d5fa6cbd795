"""Benchmarks: `uv run python -m bench` prints a table and writes JSON (see README, Performance)."""
