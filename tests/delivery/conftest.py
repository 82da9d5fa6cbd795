"""Shared paths and helpers of the delivery tests (workflows, compose, Kubernetes manifests).

The scripts the workflows run live in .github/scripts and import each other by module name, so
that folder is put on sys.path here.
"""

from __future__ import annotations

import json
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


def write_leg(root: Path, image: str, arch: str, layers: list[tuple[str, int, int]]) -> None:
    """A build leg's artifact as the images workflow uploads it: meta.json, image.json (nix2container's
    layers: digest, uncompressed size) and manifest.json (the pushed, compressed layers)."""
    leg = root / f"{image}-{arch}"
    leg.mkdir(parents=True)
    meta = {
        "image": image,
        "arch": arch,
        "repository": f"ghcr.io/o/ktrdr-{image}",
        "digest": f"sha256:{image}{arch}",
    }
    (leg / "meta.json").write_text(json.dumps(meta))
    (leg / "image.json").write_text(json.dumps({"layers": [{"digest": d, "size": s} for d, s, _ in layers]}))
    (leg / "manifest.json").write_text(json.dumps({"layers": [{"size": c} for _, _, c in layers]}))
