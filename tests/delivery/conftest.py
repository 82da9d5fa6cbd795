"""Shared paths and helpers of the delivery tests (workflows, compose, Kubernetes manifests).

The scripts the workflows run live in .github/scripts and import each other by module name, so
that folder is put on sys.path here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"
WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY = ROOT / "deploy"

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def dev_tool(name: str) -> str:
    """A command-line tool of the dev group (next to this interpreter, else on PATH), or skip."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the dev dependency group)")
    return found


def run_tool(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
