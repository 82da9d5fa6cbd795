"""Shared helpers of the Nix-level tests: where the repository and the Nix tools are, and how to
evaluate an expression. Tier 1 needs only `nix-instantiate`; tier 2 also needs the inputs' snapshots
laid out by ../shared/tools/nix-offline-inputs (KTRDR_NIX_INPUTS)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NIX_FLAGS = ["--extra-experimental-features", "nix-command flakes"]


class NixEvalError(Exception):
    """A Nix evaluation failed; the message is Nix's stderr."""


def nix_instantiate() -> str:
    path = shutil.which("nix-instantiate")
    if path is None:
        pytest.skip("nix-instantiate is not installed (Debian: apt-get install nix-bin)")
    return path


def nix_inputs() -> Path:
    value = os.environ.get("KTRDR_NIX_INPUTS")
    if not value:
        pytest.skip(
            "KTRDR_NIX_INPUTS is not set: lay the flake inputs' snapshots out with "
            "../shared/tools/nix-offline-inputs and export the folder it prints"
        )
    path = Path(value)
    missing = [
        name
        for name in ("nixpkgs-lib", "pyproject-nix", "uv2nix", "pyproject-build-systems", "nix2container")
        if not (path / name).is_dir()
    ]
    if missing:
        pytest.skip(f"KTRDR_NIX_INPUTS={path} lacks {', '.join(missing)}")
    return path


def nix_eval(expr: str, *, strict: bool = True) -> Any:
    """Evaluate a Nix expression (in the repository root) and return it decoded from JSON."""
    cmd = [nix_instantiate(), "--eval", "--json", *(["--strict"] if strict else []), "-E", expr]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise NixEvalError(proc.stderr)
    return json.loads(proc.stdout)


def harness(inputs: Path, system: str, extra: str = "") -> str:
    """A Nix expression calling tests/nix/harness.nix for `system`."""
    return (
        f"import ./tests/nix/harness.nix {{ inputs = {inputs}; workspaceRoot = ./.; "
        f'system = "{system}"; {extra} }}'
    )
