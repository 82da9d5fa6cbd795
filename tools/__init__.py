"""Maintainer tools for the Nix side: they read locked wheels and write or check the data tables that
nix/*.nix reads. Run with ``uv run python -m tools.<name>``; none of them runs in the test suite."""
