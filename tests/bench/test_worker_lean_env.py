"""The images leave out what they never import: torch's dependencies that nix/torch-variants.json
drops and the subtrees nix/prune.json prunes. This runs every worker test suite (training and
backtesting, both worker apps, and the end-to-end tests that start the backend and both workers and
run ``ktrdr demo``) and the backend's suites in a scratch environment that is this one without them
(bench.scratch_env), so an import of anything left out fails here before it fails in an image.

The environment keeps the CUDA-only packages the installed (PyPI, CUDA) torch needs to load; the
CPU image has none of them and the CPU torch does not link them."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import subprocess
import zipfile
from pathlib import Path, PurePosixPath

import pytest

from bench import lock_sizes
from bench.imports import WORKER_SUITES
from bench.scratch_env import lean_copy
from bench.sizes import CPU_WHEEL_STAND_IN, prune_table

pytest.importorskip("torch")
pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
# The backend image's suites (its prunes: SQLAlchemy's and Alembic's test kits, unused dialects).
BACKEND_SUITES = ("tests/api", "tests/control", "tests/cli")


def left_out() -> set[str]:
    """Packages the worker images' closures lose to the variant table's drops (CUDA-only ones aside)."""
    full = {"extras": ["ml"], "torch": "none"}
    out: set[str] = set()
    for name in ("worker-cpu", "worker-gpu"):
        everything = set(lock_sizes.resolve(full, "x86_64").packages)
        kept = set(lock_sizes.closure(name, "x86_64").packages)
        out |= {p for p in everything - kept if not lock_sizes.is_cuda_only(p) or p == "triton"}
    return out


def pruned_patterns() -> list[str]:
    return [pattern for patterns in prune_table().values() for pattern in patterns]


def test_the_variant_table_leaves_out_what_the_workers_never_import() -> None:
    assert {"networkx", "jinja2", "fsspec", "filelock", "setuptools", "triton"} <= left_out()
    assert not {"sympy", "mpmath", "numpy", "pandas", "typing-extensions"} & left_out()


def test_every_pruned_subtree_exists_in_the_locked_packages() -> None:
    """A pattern that matches nothing in the locked torch (PyPI's CUDA build, installed here, or the
    CPU wheel on this machine), sympy... is stale, not a saving."""
    site = Path(importlib.util.find_spec("torch").origin).parents[1]  # type: ignore[arg-type, union-attr]
    cpu_wheel: set[str] = set()
    if CPU_WHEEL_STAND_IN.exists():
        with zipfile.ZipFile(CPU_WHEEL_STAND_IN) as zf:
            names = [PurePosixPath(n) for n in zf.namelist()]
            cpu_wheel = {str(n) for n in names} | {str(p) for n in names for p in n.parents}
    for key in ("torch", "sympy", "mpmath", "numpy", "pandas", "sqlalchemy", "alembic"):
        for pattern in prune_table()[key]:
            if "/__pycache__/" in pattern:  # a module's bytecode, compiled only where it was imported
                folder, compiled = pattern.split("/__pycache__/")
                pattern = f"{folder}/{compiled.split('.', 1)[0]}.py"
            in_wheel = any(
                fnmatch.fnmatch(d, pattern) or fnmatch.fnmatch(d, pattern + "/*") for d in cpu_wheel
            )
            assert list(site.glob(pattern)) or in_wheel, f"{pattern} matches nothing in the installed {key}"


@pytest.mark.timeout(1800)
def test_the_suites_pass_without_what_the_images_leave_out(tmp_path: Path) -> None:
    python = lean_copy(tmp_path / "lean", left_out(), pruned_patterns())
    # The environment really lacks them (else this test would prove nothing).
    probe = (
        "import importlib.util, json, sys, pathlib, torch, sympy\n"
        "mods = sys.argv[1:]\n"
        "site = pathlib.Path(torch.__file__).parents[1]\n"
        "print(json.dumps({'found': [m for m in mods if importlib.util.find_spec(m)],\n"
        "                  'compile_pruned': (site / 'torch/_inductor/codegen').exists(),\n"
        "                  'physics': (site / 'sympy/physics').exists()}))\n"
    )
    modules = ["networkx", "jinja2", "fsspec", "filelock", "setuptools", "triton", "pkg_resources"]
    out = subprocess.run([python, "-c", probe, *modules], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == {"found": [], "compile_pruned": False, "physics": False}

    suites = [s for s in (*WORKER_SUITES, *BACKEND_SUITES) if (REPO / s).exists()]
    run = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *suites],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
