"""Environment sizes per image role: installed bytes, before and after the prune table, and download
bytes, from uv.lock.

* Installed: each role's Python packages installed with uv from uv.lock into a scratch virtual
  environment (``uv export`` for the role's extras, then ``uv pip install --no-deps
  --compile-bytecode``, as the Nix build compiles bytecode into the store), measured on disk; then
  the prune table nix/prune.json (the one nix/prune.nix applies) is applied to it and it is measured
  again, and once more after stripping as the Nix build does (nix/strip.nix, from nix/strip.json:
  the strip hook's debug pass on every ELF file of every package that is not CUDA-only, then
  ``--strip-unneeded`` on torch/lib); every stripped extension module of the venv's Python is
  imported afterwards. The CUDA role leaves out
  what nix/torch.nix drops from its torch (triton).
  worker-cpu's torch cannot be installed here (the CPU wheel's index is unreachable): the torch
  2.13.0+cpu wheel that lies on this machine is unpacked into the environment instead, as a stand-in
  for 2.14.0+cpu, and compiled the same way; without it worker-cpu is measured without torch.
* Download: compressed wheel bytes per role and arch, from uv.lock (bench.lock_sizes).

Not counted: the Python runtime closure (interpreter, stdlib, glibc, openssl...), which every image
carries on top of these figures. The original system's images, for comparison: 534 MB / 1.35 GB /
9.19 GB (its own Dockerfiles).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

from bench import lock_sizes

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000
ORIGINAL_IMAGES_MB = {"backend": 534, "worker-cpu": 1350, "worker-gpu": 9190}
CPU_WHEEL_STAND_IN = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


@cache
def prune_table() -> dict[str, list[str]]:
    """nix/prune.json's ``paths``: lock package name (or ``prefix*``) -> globs under site-packages."""
    table: dict[str, list[str]] = json.loads((REPO / "nix" / "prune.json").read_text())["paths"]
    return table


def key_matches(key: str, name: str) -> bool:
    """The table's key rule, as nix/prune.nix has it: ``nvidia-*`` is a prefix, anything else a name."""
    return name.startswith(key[:-1]) if key.endswith("*") else key == name


def prune_patterns(name: str) -> list[str]:
    """The patterns nix/prune.nix removes from package ``name``."""
    table = prune_table()
    return [pattern for key in table if key_matches(key, name) for pattern in table[key]]


@cache
def strip_table() -> dict[str, Any]:
    """nix/strip.json: the strip hook's debug flags and the per-package ``stripAll`` directories."""
    table: dict[str, Any] = json.loads((REPO / "nix" / "strip.json").read_text())
    return table


def strips(name: str) -> bool:
    """nix/strip.nix's rule: the strip hook runs on every wheel that is not CUDA-only."""
    return not lock_sizes.is_cuda_only(name)


def tree_bytes(root: Path) -> int:
    """Bytes of all regular files under ``root`` (hard links counted once)."""
    if not root.is_dir():
        return root.lstat().st_size
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            stat = os.lstat(os.path.join(dirpath, name))
            key = (stat.st_dev, stat.st_ino)
            if key not in seen:
                seen.add(key)
                total += stat.st_size
    return total


def installed_names(site: Path) -> set[str]:
    """Normalised names of the distributions installed in ``site``."""
    return {re.sub(r"[-_.]+", "-", dist.name.split("-", 1)[0]).lower() for dist in site.glob("*.dist-info")}


def apply_prune_table(site: Path) -> dict[str, int]:
    """Remove what the prune table names from ``site``; bytes removed per table key."""
    names = installed_names(site)
    removed: dict[str, int] = {}
    for key, patterns in prune_table().items():
        if not any(key_matches(key, name) for name in names):
            continue
        removed[key] = 0
        for pattern in patterns:
            for path in site.glob(pattern):
                removed[key] += tree_bytes(path)
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
    return removed


def _distribution_files(site: Path) -> dict[str, list[Path]]:
    """The files each installed distribution's RECORD lists, by normalised name."""
    files: dict[str, list[Path]] = {}
    for record in site.glob("*.dist-info/RECORD"):
        name = re.sub(r"[-_.]+", "-", record.parent.name.split("-", 1)[0]).lower()
        rows = (line.split(",", 1)[0] for line in record.read_text().splitlines() if line)
        files[name] = [site / row for row in rows if not row.startswith("..")]
    return files


def _strip(flags: list[str], paths: list[Path]) -> None:
    """Run strip on files this scratch environment owns alone (strip rewrites a hard-linked file in
    place, so a link into uv's cache would strip every environment sharing it)."""
    shared = [p for p in paths if p.stat().st_nlink > 1]
    if shared:
        raise RuntimeError(f"refusing to strip hard-linked files, e.g. {shared[0]}")
    _quiet(["strip", *flags, *map(str, paths)])


def is_elf(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"\x7fELF"


def strip_like_the_hook(site: Path) -> tuple[dict[str, int], list[Path]]:
    """What nixpkgs' strip hook does to each package nix/strip.nix turns it on for, in its order:
    strip.json's ``debugFlags`` on every ELF file of the package, then each ``stripAll`` directory's
    ``flags``. The bytes saved per package (those that saved any) and the stripped files."""
    table = strip_table()
    saved: dict[str, int] = {}
    stripped: list[Path] = []
    for name, paths in sorted(_distribution_files(site).items()):
        objects = [p for p in paths if strips(name) and p.is_file() and not p.is_symlink() and is_elf(p)]
        if not objects:
            continue
        before = sum(p.stat().st_size for p in objects)
        _strip(table["debugFlags"], objects)
        for directory in table["stripAll"].get(name, {}).get("paths", []):
            inside = [p for p in objects if p.is_relative_to(site / directory)]
            _strip(table["stripAll"][name]["flags"], inside)
        stripped += objects
        if (delta := before - sum(p.stat().st_size for p in objects)) > 0:
            saved[name] = delta
    return saved, stripped


# tools/import_extensions.py, run with ``python -c`` by the interpreter under test (argv: module,
# path, module, path...); one whose package needs something the role lacks (greenlet.tests imports
# psutil) is loaded by the dynamic linker instead, which is where a broken strip shows.
# tools/replay_fixup.py and each role's Nix checks (nix/checks.nix) run the same script.
IMPORT_ALL = (REPO / "tools" / "import_extensions.py").read_text()


def import_extensions(python: str, site: Path, objects: list[Path]) -> int:
    """Import every extension module among ``objects`` built for ``python`` (others, such as the
    CPU torch stand-in's cp311 modules, cannot load in it); raise if one fails, else their count."""
    suffix = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    modules = [p for p in objects if p.name.endswith(suffix)]
    argv = [arg for p in modules for arg in (".".join(p.relative_to(site).parts)[: -len(suffix)], str(p))]
    proc = subprocess.run([python, "-c", IMPORT_ALL, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"stripped extension modules fail to import:\n{proc.stdout}{proc.stderr}")
    return len(modules)


def _requirements(role: dict[str, Any]) -> str:
    argv = ["uv", "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes"]
    argv += [arg for extra in role["extras"] for arg in ("--extra", extra)]
    text = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=REPO).stdout
    lines = [line for line in text.splitlines() if line and not line.lstrip().startswith(("#", "-"))]

    def keep(line: str) -> bool:
        name = line.split("==")[0].strip()
        if role["torch"] == "cpu":
            return not (lock_sizes.is_cuda_only(name) or name == "torch")
        return not (role["torch"] == "cuda" and name in lock_sizes.CUDA_DROPPED)

    return "\n".join(filter(keep, lines)) + "\n"


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_role(role: dict[str, Any]) -> dict[str, Any]:
    """Install the role's packages (and ktrdr) into a scratch venv; measure, prune, measure again."""
    with tempfile.TemporaryDirectory(prefix="ktrdr-size-") as tmp:
        venv = Path(tmp) / "venv"
        req = Path(tmp) / "requirements.txt"
        req.write_text(_requirements(role))
        _quiet(["uv", "venv", "-q", "--python", sys.executable, str(venv)])
        python = str(venv / "bin" / "python")
        # Copies, not uv's default hard links into its cache: strip edits a hard-linked file in place,
        # which would strip the cache and every environment linked to it.
        install = ["uv", "pip", "install", "-q", "--python", python, "--no-deps", "--compile-bytecode"]
        install += ["--link-mode", "copy"]
        _quiet([*install, "-r", str(req)])
        _quiet([*install, str(REPO)])
        (site,) = (venv / "lib").glob("python*/site-packages")
        result: dict[str, Any] = {}
        if role["torch"] == "cpu":
            result["torch"] = "absent"
            if CPU_WHEEL_STAND_IN.exists():
                with zipfile.ZipFile(CPU_WHEEL_STAND_IN) as zf:
                    zf.extractall(site)
                _quiet([python, "-m", "compileall", "-q", str(site / "torch")])
                result["torch"] = f"stand-in {CPU_WHEEL_STAND_IN.name}"
        installed = tree_bytes(site)
        removed = apply_prune_table(site)
        pruned = tree_bytes(site)
        result |= {
            "installed_mb": round(installed / MB, 1),
            "installed_pruned_mb": round(pruned / MB, 1),
            "pruned_mb_by_entry": {key: round(n / MB, 1) for key, n in removed.items()},
        }
        if not shutil.which("strip"):
            return result
        # nix/strip.nix turns the hook back on for the non-CUDA wheels (nix/strip.json says how).
        saved, stripped = strip_like_the_hook(site)
        result["stripped_mb_by_package"] = {name: round(n / MB, 1) for name, n in saved.items()}
        result["stripped_extension_modules_imported"] = import_extensions(python, site, stripped)
        result["installed_pruned_stripped_mb"] = round(tree_bytes(site) / MB, 1)
        return result


def run(install: bool = True) -> dict[str, Any]:
    roles = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]
    downloads = lock_sizes.figures()
    result: dict[str, Any] = {"roles": {}}
    for name, role in roles.items():
        entry: dict[str, Any] = {
            "download_mb": {arch: mb for arch, (_, mb) in downloads[name].items()},
            "packages": {arch: count for arch, (count, _) in downloads[name].items()},
            "original_image_mb": ORIGINAL_IMAGES_MB[name],
        }
        if install:
            entry |= measure_role(role)
        result["roles"][name] = entry
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
