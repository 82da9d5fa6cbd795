"""What the workers import: the evidence behind the workers' drops (nix/torch-variants.json) and
torch prunes (nix/prune.json).

``python -m bench.imports`` runs the worker test suites and ``ktrdr demo`` (both workers, training
and backtest, through real processes) with an import tracer in every Python process they start: a
``sitecustomize`` on ``PYTHONPATH`` that records every module name the import system is asked to find
(successful or not, as it happens, so a process that is killed still leaves its record) and, at exit,
every module that was loaded. It prints, as JSON:

* ``distributions``: per installed distribution of the worker closure, whether any process imported
  (or tried to import) one of its modules;
* ``torch_subtrees``: the packages under ``torch/`` of which no module was ever asked for, largest
  first, with their bytes (sources, data and the bytecode a store install compiles).

Nothing here decides anything: the tables are edited by hand from this output, and
``tests/bench/test_worker_lean_env.py`` runs the worker suites without what the tables drop.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRACE_ENV = "BENCH_IMPORT_TRACE_DIR"

# Every suite that runs worker code (the worker apps, training, backtesting and the domain packages
# they compute with), and the end-to-end tests, whose stack starts both workers as real processes.
WORKER_SUITES = (
    "tests/worker",
    "tests/training",
    "tests/backtesting",
    "tests/neural",
    "tests/features",
    "tests/fuzzy",
    "tests/indicators",
    "tests/strategy",
    "tests/data",
    "tests/e2e",
)

# Written into the trace folder and put first on PYTHONPATH; `site` imports it in every process.
SITECUSTOMIZE = '''
import atexit, os, sys

_dir = os.environ.get("BENCH_IMPORT_TRACE_DIR")
if _dir:
    _pid = os.getpid()
    _asked = open(os.path.join(_dir, f"asked-{_pid}.txt"), "a", buffering=1)
    # What site already imported before this file ran.
    _seen = set(sys.modules)
    _asked.write("\\n".join(sorted(_seen)) + "\\n")

    class _Recorder:
        """First on sys.meta_path: notes each name, then lets the real finders find it."""

        @staticmethod
        def find_spec(name, path=None, target=None):
            if name not in _seen:
                _seen.add(name)
                _asked.write(name + "\\n")
            return None

    sys.meta_path.insert(0, _Recorder)

    @atexit.register
    def _loaded():
        with open(os.path.join(_dir, f"loaded-{_pid}.txt"), "w") as fh:
            fh.write("\\n".join(sorted(sys.modules)))
'''


def run_traced(commands: Iterable[list[str]], trace_dir: Path) -> None:
    """Run each command with the tracer active in every Python process it starts."""
    (trace_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(trace_dir), env.get("PYTHONPATH", "")]))
    env[TRACE_ENV] = str(trace_dir)
    for command in commands:
        subprocess.run(command, cwd=REPO, env=env, check=True)


def read_trace(trace_dir: Path) -> tuple[set[str], set[str]]:
    """(names asked for, names loaded) over every traced process."""
    asked: set[str] = set()
    loaded: set[str] = set()
    for path in trace_dir.glob("asked-*.txt"):
        asked |= set(path.read_text().split())
    for path in trace_dir.glob("loaded-*.txt"):
        loaded |= set(path.read_text().split())
    return asked, loaded


def site_packages() -> Path:
    import sysconfig

    return Path(sysconfig.get_paths()["purelib"])


def distribution_modules() -> dict[str, set[str]]:
    """Top-level import names per installed distribution (normalised name)."""
    out: dict[str, set[str]] = {}
    for top, dists in metadata.packages_distributions().items():
        for dist in dists:
            out.setdefault(dist.lower().replace("_", "-"), set()).add(top)
    return out


def compiled_bytes(path: Path) -> int:
    """Bytes of the level-0 bytecode a store install writes for ``path`` (header + marshalled code)."""
    try:
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return 0
    return 16 + len(marshal.dumps(code))


def installed_bytes(root: Path) -> int:
    """Every file under ``root`` except existing bytecode, plus the bytecode of each ``.py``."""
    total = 0
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in files:
            path = Path(dirpath, name)
            total += path.lstat().st_size
            if name.endswith(".py"):
                total += compiled_bytes(path)
    return total


def module_of(package_dir: Path, site: Path) -> str:
    return ".".join(package_dir.relative_to(site).parts)


def never_imported_subtrees(root: Path, site: Path, asked: set[str], min_bytes: int) -> list[dict[str, Any]]:
    """The largest packages under ``root`` of which no module was asked for (a package whose parent
    was imported, or the parent's own subtree when nothing under it was)."""

    def touched(module: str) -> bool:
        return module in asked or any(name.startswith(module + ".") for name in asked)

    found: list[dict[str, Any]] = []

    def walk(directory: Path) -> None:
        for child in sorted(p for p in directory.iterdir() if p.is_dir() and p.name != "__pycache__"):
            module = module_of(child, site)
            if not (child / "__init__.py").exists() and not any(child.glob("*.py")):
                continue  # data folders (lib, include...) are the prune table's other entries
            if touched(module):
                walk(child)
                continue
            size = installed_bytes(child)
            if size >= min_bytes:
                found.append({"path": str(child.relative_to(site)), "module": module, "bytes": size})

    walk(root)
    return sorted(found, key=lambda entry: -entry["bytes"])


def analyse(asked: set[str], loaded: set[str], min_bytes: int = 1_000_000) -> dict[str, Any]:
    """Per worker distribution: imported or not; torch's never-imported subtrees."""
    from bench import lock_sizes

    site = site_packages()
    modules = distribution_modules()
    closure = lock_sizes.closure("worker-gpu", "x86_64").packages
    distributions: dict[str, Any] = {}
    for name in sorted(closure):
        tops = modules.get(name, set())
        distributions[name] = {
            "modules": sorted(tops),
            "asked": sorted(t for t in tops if t in asked),
            "loaded": sorted(t for t in tops if t in loaded),
        }
    return {
        "distributions": distributions,
        "never_imported": sorted(n for n, d in distributions.items() if d["modules"] and not d["asked"]),
        "torch_subtrees": never_imported_subtrees(site / "torch", site, asked, min_bytes),
        "traced_modules": {"asked": len(asked), "loaded": len(loaded)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--trace-dir", type=Path, help="keep the raw trace here (default: a temp folder)")
    parser.add_argument("--suites", nargs="*", default=list(WORKER_SUITES))
    args = parser.parse_args(argv)
    commands = [
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.suites],
        [sys.executable, "-m", "ktrdr", "demo"],
    ]
    with tempfile.TemporaryDirectory(prefix="ktrdr-imports-") as tmp:
        trace_dir = args.trace_dir or Path(tmp)
        trace_dir.mkdir(parents=True, exist_ok=True)
        run_traced(commands, trace_dir)
        result = analyse(*read_trace(trace_dir))
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
