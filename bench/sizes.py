"""Environment sizes per image role: installed bytes, before and after the prune table, package by
package, and download bytes, from uv.lock.

* Installed: each role's Python packages installed with uv from uv.lock into a scratch virtual
  environment (the role's closure as bench.lock_sizes resolves it, nix/torch-variants.json's drops
  applied, then ``uv pip install --no-deps --compile-bytecode``, as the Nix build compiles bytecode
  into the store), measured on disk; then
  the prune table nix/prune.json (the one nix/prune.nix applies) is applied to it and it is measured
  again, and once more after stripping as the Nix build does (nix/strip.nix, from nix/strip.json:
  the strip hook's debug pass on every ELF file of every package that is not CUDA-only, then
  ``--strip-unneeded`` on torch/lib); every stripped extension module of the venv's Python is
  imported afterwards.
  worker-cpu's torch cannot be installed here (the CPU wheel's index is unreachable): the torch
  2.13.0+cpu wheel that lies on this machine is unpacked into the environment instead, as a stand-in
  for 2.14.0+cpu, and compiled the same way; without it worker-cpu is measured without torch.
* Download: compressed wheel bytes per role and arch, from uv.lock (bench.lock_sizes).

Each package's store bytes (``package_sizes``: files, bytes, the bytes of a tar layer of them) are
written to bench/package-sizes.json; bench.estimate adds the runtime closure (interpreter, glibc,
openssl...: bench/runtime-closure.json) and sums them layer by layer into each image's estimate,
which ``run`` reports with the budgets. The original system's images, for comparison: 534 MB / 1.35
GB / 9.19 GB (its own Dockerfiles).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
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
    return {name: paths for name, (_, paths) in distributions(site).items()}


def distributions(site: Path) -> dict[str, tuple[str, list[Path]]]:
    """Each installed distribution's version and the files its RECORD lists under site-packages."""
    return {name: (version, paths) for name, (version, paths, _) in _records(site).items()}


def _records(site: Path) -> dict[str, tuple[str, list[Path], list[Path]]]:
    """Per distribution: version, files under site-packages, and scripts (``bin/``) its RECORD lists."""
    found: dict[str, tuple[str, list[Path], list[Path]]] = {}
    bin_dir = site.parents[2] / "bin"
    for record in site.glob("*.dist-info/RECORD"):
        dist, version = record.parent.name.removesuffix(".dist-info").split("-", 1)
        name = re.sub(r"[-_.]+", "-", dist).lower()
        rows = [line.split(",", 1)[0] for line in record.read_text().splitlines() if line]
        inside = [site / row for row in rows if not row.startswith("..")]
        scripts = [bin_dir / Path(row).name for row in rows if row.startswith("..") and "/bin/" in row]
        found[name] = (version, inside, scripts)
    return found


# A tar archive (an image layer) spends one 512-byte header on every entry and pads every file to
# 512 bytes (POSIX ustar; long names need a PAX header more, which this leaves out).
TAR_BLOCK = 512


def tar_bytes(file_sizes: list[int], other_entries: int) -> int:
    """Bytes of a tar archive holding files of ``file_sizes`` and ``other_entries`` directories or links."""
    padded = sum(-(-size // TAR_BLOCK) * TAR_BLOCK for size in file_sizes)
    return padded + TAR_BLOCK * (len(file_sizes) + other_entries)


def package_sizes(site: Path) -> dict[str, dict[str, Any]]:
    """Per installed distribution, what its own store path holds once installed, pruned and stripped:
    the files its RECORD lists that are left, the bytecode compiled for each of its modules, the
    directories they sit in (down from the store path's ``lib/python3.X/site-packages``), their bytes
    and the bytes of a tar layer of them; and how many entries it adds to site-packages' top level
    (each becomes one symlink in the venv)."""
    depth = len(site.relative_to(site.parents[2]).parts)  # lib/python3.X/site-packages
    sizes: dict[str, dict[str, Any]] = {}
    for name, (version, listed, scripts) in sorted(_records(site).items()):
        files = {p for p in listed if p.is_file() and not p.is_symlink()}
        files |= {
            pyc
            for p in listed
            if p.suffix == ".py"
            for pyc in [p.parent / "__pycache__" / f"{p.stem}.{sys.implementation.cache_tag}.pyc"]
            if pyc.is_file()
        }
        dirs = {parent for p in files for parent in p.relative_to(site).parents if parent != Path(".")}
        script_sizes = [p.stat().st_size for p in scripts if p.is_file()]
        file_sizes = [p.stat().st_size for p in files] + script_sizes
        sizes[name] = {
            "version": version,
            "files": len(file_sizes),
            "bytes": sum(file_sizes),
            # the store path itself and lib/, lib/python3.X/, site-packages/ in it, and bin/
            "tar_bytes": tar_bytes(file_sizes, len(dirs) + depth + 1 + bool(script_sizes)),
            "top_level": len({p.relative_to(site).parts[0] for p in files}),
            "scripts": len(script_sizes),
            "script_bytes": sum(script_sizes),
        }
    return sizes


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


def _requirements(name: str, role: dict[str, Any]) -> str:
    """The role's x86_64 closure as bench.lock_sizes resolves it (torch-variants.json's drops
    applied to torch's dependencies, as nix/torch.nix does), pinned, without ktrdr and without a torch
    the variant swaps for a wheel of another index."""
    closure = lock_sizes.closure(name, "x86_64")
    swapped = "torch" in lock_sizes.variants()["variants"][role["torch"]]["swap"]
    pins = [
        f"{package}=={version}"
        for package, version in sorted(closure.versions.items())
        if package != "ktrdr" and not (swapped and package == "torch")
    ]
    return "\n".join(pins) + "\n"


def _quiet(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_role(name: str, role: dict[str, Any]) -> dict[str, Any]:
    """Install the role's packages (and ktrdr) into a scratch venv; measure, prune, measure again,
    strip, measure again, package by package."""
    with tempfile.TemporaryDirectory(prefix="ktrdr-size-") as tmp:
        venv = Path(tmp) / "venv"
        req = Path(tmp) / "requirements.txt"
        req.write_text(_requirements(name, role))
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
                    tops = sorted({n.split("/", 1)[0] for n in zf.namelist() if "/" in n})
                _quiet([python, "-m", "compileall", "-q", *(str(site / top) for top in tops)])
                result["torch"] = f"stand-in {CPU_WHEEL_STAND_IN.name}"
        installed = tree_bytes(site)
        removed = apply_prune_table(site)
        pruned = tree_bytes(site)
        result |= {
            "installed_mb": round(installed / MB, 1),
            "installed_pruned_mb": round(pruned / MB, 1),
            "pruned_mb_by_entry": {key: round(n / MB, 1) for key, n in removed.items()},
        }
        if shutil.which("strip"):
            # nix/strip.nix turns the hook back on for the non-CUDA wheels (nix/strip.json says how).
            saved, stripped = strip_like_the_hook(site)
            result["stripped_mb_by_package"] = {pkg: round(n / MB, 1) for pkg, n in saved.items()}
            result["stripped_extension_modules_imported"] = import_extensions(python, site, stripped)
            result["installed_pruned_stripped_mb"] = round(tree_bytes(site) / MB, 1)
        result["package_sizes"] = package_sizes(site)
        return result


# What the measurements depend on besides uv.lock (whose packages and versions the size-budget test
# compares directly): the tables that decide what is removed, stripped and dropped. A change to what
# one of them says (not to its prose) leaves bench/package-sizes.json stale, and the test says so.
MEASURED_WITH = ("nix/prune.json", "nix/strip.json", "nix/torch-variants.json")
PROSE = frozenset({"_comment", "comment", "reason"})


def without_prose(value: Any) -> Any:
    """A table as far as it decides anything: no comments or reasons (a `drop` table's values are
    the reasons for its keys)."""
    if isinstance(value, dict):
        return {
            key: sorted(item) if key == "drop" else without_prose(item)
            for key, item in value.items()
            if key not in PROSE
        }
    if isinstance(value, list):
        return [without_prose(item) for item in value]
    return value


def measured_with() -> dict[str, str]:
    """The sha256 of what each table of MEASURED_WITH says now (canonical JSON, prose left out)."""
    digests = {}
    for rel in MEASURED_WITH:
        table = without_prose(json.loads((REPO / rel).read_text()))
        digests[rel] = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()
    return digests


def write_package_sizes(measured: dict[str, dict[str, Any]], path: Path) -> None:
    """bench/package-sizes.json: per role, each package's measured store bytes (bench.estimate)."""
    stand_in = None
    if any(str(m.get("torch", "")).startswith("stand-in") for m in measured.values()):
        stand_in = {"file": CPU_WHEEL_STAND_IN.name, "wheel_bytes": CPU_WHEEL_STAND_IN.stat().st_size}
    table = {
        "comment": (
            "Written by `python -m bench --only sizes` (bench/sizes.py); read by bench/estimate.py and "
            "tests/nix/test_size_budget.py. Per image role, x86_64: each package of its closure as the "
            "store holds it (installed from uv.lock with its bytecode, nix/prune.json applied, stripped as "
            "nix/strip.json says): files, bytes, bytes of a tar layer of it, its top-level entries and "
            "scripts. Re-run after changing uv.lock or a table of measured_with (the sha256 of what "
            "each says, as measured)."
        ),
        "measured_with": measured_with(),
        "python": platform.python_version(),
        "torch_stand_in": stand_in,
        "roles": {name: m["package_sizes"] for name, m in measured.items()},
    }
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


def run(install: bool = True) -> dict[str, Any]:
    from bench import estimate

    roles = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]
    downloads = lock_sizes.figures()
    result: dict[str, Any] = {"roles": {}}
    measured: dict[str, dict[str, Any]] = {}
    for name, role in roles.items():
        entry: dict[str, Any] = {
            "download_mb": {arch: mb for arch, (_, mb) in downloads[name].items()},
            "packages": {arch: count for arch, (count, _) in downloads[name].items()},
            "original_image_mb": ORIGINAL_IMAGES_MB[name],
        }
        if install:
            measured[name] = measure_role(name, role)
            entry |= {k: v for k, v in measured[name].items() if k != "package_sizes"}
        result["roles"][name] = entry
    if install:
        write_package_sizes(measured, estimate.PACKAGE_SIZES)
        estimate.package_sizes.cache_clear()
    plan = estimate.plan_from_nix()
    result["plan"] = "tier 2 (nix/layer-plan.nix)" if plan else "uv.lock (bench.estimate.plan_from_lock)"
    result["estimates"] = {name: e.as_dict() for name, e in estimate.estimates(plan).items()}
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
