"""Replays, on real wheel files, what a Nix build of our package sets does to them after `uv pip
install`, in the same order, then loads the result and runs a training step.

Each wheel is installed into its own fake store path (``<work>/store/<hash>-<name>-<version>``, as
long as a real one, so patchelf has to grow the files as it would in the sandbox), and then:

1. postInstall: nix/prune.json's patterns are removed (nix/prune.nix);
2. fixupOutputHooks, in the order stdenv registers them: patchelf's setup hook comes first (stdenv's
   defaultNativeBuildInputs put the Linux stdenv's extraNativeBuildInputs, patchelf among them,
   before its setup-hooks/*.sh; build logs print "shrinking RPATHs" before "stripping"). It runs
   ``patchelf --shrink-rpath`` on every regular ELF file of the output (not under ``.build-id``),
   failures ignored, on every package: uv2nix and pyproject.nix leave dontPatchELF unset. It drops
   only absolute RUNPATH entries that hold none of the file's NEEDED libraries; the files it changes
   are reported (``shrunk_rpaths``).
   Then nixpkgs' strip hook (pkgs/build-support/setup-hooks/strip.sh), when nix/strip.nix turns it
   on for the package: every regular file under ``lib lib32 lib64 libexec bin sbin`` is run through
   ``strip <debugFlags>`` one file at a time, failures ignored as the hook's ``xargs`` exit code 123
   is; then the package's ``stripAll`` directories of nix/strip.json with their flags;
3. postFixup, autoPatchelf (pkgs/build-support/setup-hooks/auto-patchelf.py): every ELF file of the
   output gets ``patchelf --set-interpreter`` if it has a PT_INTERP, and ``patchelf --set-rpath``
   with the directories its NEEDED entries were found in (the output itself, recursively, first; then
   the search directories, not recursively; glibc's own libraries are left to the loader), plus the
   derivation's appendRunpaths; a NEEDED entry found nowhere and not matched by the ignore patterns
   fails the replay, as it fails the build.

Then ``--python`` (an interpreter of the target architecture, e.g. through qemu-user) imports every
replayed extension module it can load and runs a backward pass and an optimizer step of a small
model in torch, when torch is among the wheels, and saves and reloads it.

What this does not replay: nixpkgs' own strip/patchelf builds (use ``--strip`` and ``--patchelf`` to
pick versions), the driver folders nix/torch.nix appends to the CUDA wheels' runpaths (they hold
nothing on a build machine), the venv's symlink tree (the sites are put on PYTHONPATH instead), and
anything a GPU would exercise.

The library folders stand for store paths and should have store-length names: ``--libc-dir`` holds
the target's glibc libraries and its loader (``--interpreter``), ``--lib-dir`` gcc's lib output
(libstdc++.so.6, libgcc_s.so.1, libgomp.so.1), ``--pkg zlib=DIR`` zlib's. For worker-gpu's x86_64
set (wheels downloaded from uv.lock's URLs and checked against its hashes):

    uv run python -m tools.replay_fixup --wheels WHEELS --work WORK --arch x86_64 \\
        --python python3.13 --ext-suffix .cpython-313-x86_64-linux-gnu.so \\
        --libc-dir GLIBC/lib --interpreter GLIBC/lib/ld-linux-x86-64.so.2 --lib-dir GCC/lib \\
        --cuda-table --pkg zlib=ZLIB/lib --strip strip --patchelf patchelf

For aarch64 the same with ``--arch aarch64``, an aarch64 strip, and ``--python "qemu-aarch64 -cpu
neoverse-n1 -L ROOT ROOT/usr/bin/python3.13"`` where ROOT is an arm64 root (Debian's
python3.13 and libraries) that also holds an arm64 ``proc/cpuinfo`` and
``sys/devices/system/cpu/{possible,present,online,cpu*/regs/identification/midr_el1}``: torch reads
them at import, and qemu-user passes the x86 host's otherwise. For the CPU torch, ``--input
torch=ZLIB/lib`` is what nix/torch.nix's cpuTorchInputs gives it.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from bench.sizes import IMPORT_ALL, prune_patterns, strip_table, strips, tree_bytes

CUDA_TABLE = Path(__file__).resolve().parents[1] / "nix" / "cuda-libs.json"
HOOK_DEBUG_DIRS = ["lib", "lib32", "lib64", "libexec", "bin", "sbin"]
ELF_MAGIC = b"\x7fELF"
MACHINES = {"x86_64": "Advanced Micro Devices X86-64", "aarch64": "AArch64"}

TRAIN = """
import io, sys, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
first = None
for _ in range(20):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    first = first if first is not None else loss.item()
buf = io.BytesIO(); torch.save(model.state_dict(), buf); buf.seek(0)
model.load_state_dict(torch.load(buf))
with torch.no_grad():
    pred = model(x).argmax(1)
print(f"torch {torch.__version__}: loss {first:.4f} -> {loss.item():.4f}, predictions {pred.shape[0]}")
assert loss.item() < first
"""


@dataclass
class Elf:
    machine: str
    kind: str
    has_interp: bool
    segments: int
    needed: list[str]
    rpath: list[str]


def read_elf(path: Path) -> Elf | None:
    with path.open("rb") as fh:
        if fh.read(4) != ELF_MAGIC:
            return None
    out = subprocess.run(["readelf", "-hldW", str(path)], capture_output=True, text=True).stdout
    machine = re.search(r"Machine:\s+(.+)", out)
    kind = re.search(r"Type:\s+(\S+)", out)
    if not machine or not kind:
        return None
    rpath = re.search(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", out)
    return Elf(
        machine=machine.group(1).strip(),
        kind=kind.group(1),
        has_interp=bool(re.search(r"^\s+INTERP\s", out, re.M)),
        segments=len(re.findall(r"^\s+[A-Z_]+\s+0x[0-9a-f]+\s+0x", out, re.M)),
        needed=re.findall(r"\(NEEDED\).*\[(.+?)\]", out),
        rpath=rpath.group(1).split(":") if rpath else [],
    )


@dataclass
class Derivation:
    name: str
    version: str
    out: Path
    search: list[Path] = field(default_factory=list)
    search_roots: list[Path] = field(default_factory=list)
    append_runpaths: list[str] = field(default_factory=list)
    ignore_missing: list[str] = field(default_factory=list)

    @property
    def site(self) -> Path:
        return self.out / "lib" / "python3.13" / "site-packages"


def store_path(work: Path, name: str, version: str) -> Path:
    digest = hashlib.sha256(f"{name}-{version}".encode()).hexdigest()[:32]
    return work / "store" / f"{digest}-python3.13-{name}-{version}"


def install(wheel: Path, work: Path) -> Derivation:
    """Unpack the wheel into its store path, keeping the archive's file modes, as an installer does."""
    name, version, *_ = parse_wheel_filename(wheel.name)
    drv = Derivation(str(canonicalize_name(name)), str(version), store_path(work, name, str(version)))
    if drv.out.exists():
        shutil.rmtree(drv.out)
    drv.site.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            target = drv.site / info.filename
            zf.extract(info, drv.site)
            mode = info.external_attr >> 16
            if not info.is_dir() and mode & 0o111:
                target.chmod(0o755)
    return drv


def prune(drv: Derivation) -> None:
    for pattern in prune_patterns(drv.name):
        for path in drv.site.glob(pattern):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def shrink_rpaths(patchelf: str, prefix: Path) -> list[str]:
    """patchelf's setup hook (patchELF): ``patchelf --shrink-rpath`` on every regular ELF file under
    ``prefix`` but ``.build-id``, failures ignored. Returns the files whose runpath it changed."""
    changed = []
    for path in sorted(prefix.rglob("*")):
        if path.is_symlink() or not path.is_file() or ".build-id" in str(path):
            continue
        with path.open("rb") as fh:
            if fh.read(4) != ELF_MAGIC:
                continue
        before = read_elf(path)
        subprocess.run([patchelf, "--shrink-rpath", str(path)], capture_output=True)
        after = read_elf(path)
        if before and after and before.rpath != after.rpath:
            shown = f"{':'.join(before.rpath)} -> {':'.join(after.rpath)}"
            changed.append(f"{path.relative_to(prefix)}: {shown}")
    return changed


def strip_dirs(strip: str, prefix: Path, dirs: list[str], flags: list[str]) -> list[str]:
    """The hook's stripDirs: each regular file once (realpath, sort -u), `strip FLAGS FILE`; a
    failing file is skipped as the hook skips it. Returns strip's complaints about ELF files."""
    roots = [prefix / d for d in dirs if (prefix / d).exists()]
    files = sorted(
        {p.resolve() for root in roots for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    )
    files = [f for f in files if not str(f).startswith(str(prefix / "lib" / "debug") + "/")]
    complaints = []
    for f in files:
        proc = subprocess.run([strip, *flags, str(f)], capture_output=True, text=True)
        is_elf = f.open("rb").read(4) == ELF_MAGIC
        if is_elf and (proc.returncode != 0 or proc.stderr.strip()):
            complaints.append(f"{f.name}: rc={proc.returncode} {proc.stderr.strip()}")
    return complaints


def strip_hook(strip: str, drv: Derivation) -> list[str]:
    table = strip_table()
    complaints = strip_dirs(strip, drv.out, HOOK_DEBUG_DIRS, table["debugFlags"])
    extra = table["stripAll"].get(drv.name)
    if extra:
        site = drv.site.relative_to(drv.out)
        complaints += strip_dirs(strip, drv.out, [f"{site}/{p}" for p in extra["paths"]], extra["flags"])
    return complaints


def soname_cache(roots: list[Path], dirs: list[Path], machine: str) -> dict[str, Path]:
    """auto-patchelf.py's populate_cache: the output's own *.so* files (recursively) first, then the
    search directories (not recursively) and the absolute RPATH entries of what they hold."""
    cache: dict[str, Path] = {}
    todo: list[tuple[Path, bool]] = [(r, True) for r in roots] + [(d, False) for d in dirs]
    seen: set[Path] = set()
    while todo:
        root, recursive = todo.pop(0)
        if root in seen or not root.is_dir():
            continue
        seen.add(root)
        for path in root.rglob("*.so*") if recursive else root.glob("*.so*"):
            if not path.is_file():
                continue
            elf = read_elf(path)
            if elf is None or elf.machine != machine:
                continue
            todo += [(Path(p), False) for p in elf.rpath if p and "$ORIGIN" not in p]
            resolved = path.resolve()
            cache.setdefault(path.name, (resolved if resolved.name == path.name else path).parent)
    return cache


def auto_patchelf(patchelf: str, drv: Derivation, libc: Path, interpreter: Path, machine: str) -> list[str]:
    """Patch every ELF file of the output; the NEEDED entries found nowhere (ignored ones excluded)."""
    # addAutoPatchelfSearchPath: every folder below the given roots that holds a *.so* file.
    extra = sorted({p.parent for root in drv.search_roots for p in root.rglob("*.so*") if p.is_file()})
    cache = soname_cache([drv.out], drv.search + extra, machine)
    missing = []
    for path in sorted(drv.out.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        elf = read_elf(path)
        if elf is None or elf.segments == 0 or elf.machine != machine:
            continue
        if elf.kind == "EXEC" and not elf.has_interp:
            continue  # statically linked
        rpath: list[str] = []
        if elf.has_interp:
            subprocess.run([patchelf, "--set-interpreter", str(interpreter), str(path)], check=True)
        for dep in elf.needed:
            if (libc / dep).is_file():
                continue
            if dep in cache:
                rpath.append(str(cache[dep]))
            elif not any(fnmatch.fnmatch(dep, pattern) for pattern in drv.ignore_missing):
                missing.append(f"{dep} wanted by {path.relative_to(drv.out)}")
        rpath += drv.append_runpaths
        if rpath:
            joined = ":".join(dict.fromkeys(rpath))
            subprocess.run([patchelf, "--set-rpath", joined, str(path)], check=True)
    return missing


def extension_modules(drv: Derivation, suffix: str) -> list[str]:
    """Module name and path, alternating, of every extension module of the derivation."""
    return [
        item
        for p in sorted(drv.site.rglob(f"*{suffix}"))
        for item in (".".join(p.relative_to(drv.site).parts)[: -len(suffix)], str(p))
    ]


def fixup(drv: Derivation, args: argparse.Namespace, machine: str, report: dict[str, Any]) -> None:
    """What the build does to one installed wheel, in its order: postInstall's prune, the fixupOutput
    hooks (patchelf's shrink-rpath, then the strip hook where nix/strip.nix turns it on), then
    postFixup's autoPatchelf. Adds what each step found to ``report``."""
    prune(drv)
    if shrunk := shrink_rpaths(args.patchelf, drv.out):
        report["shrunk_rpaths"][drv.name] = shrunk
    if strips(drv.name) and not args.no_strip:
        before = tree_bytes(drv.out)
        if complaints := strip_hook(args.strip, drv):
            report["strip_complaints"][drv.name] = complaints
        if saved := before - tree_bytes(drv.out):
            report["stripped_mb"][drv.name] = round(saved / 1e6, 1)
    if missing := auto_patchelf(args.patchelf, drv, args.libc_dir, args.interpreter, machine):
        report["missing"][drv.name] = missing


def run(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wheels", type=Path, nargs="+", required=True, help="wheel files or folders of them"
    )
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--arch", choices=sorted(MACHINES), required=True)
    parser.add_argument("--python", required=True, help="command line of a python3.13 for --arch")
    parser.add_argument("--ext-suffix", required=True, help="e.g. .cpython-313-x86_64-linux-gnu.so")
    parser.add_argument("--strip", default="strip")
    parser.add_argument("--patchelf", default="patchelf")
    parser.add_argument("--libc-dir", type=Path, required=True, help="glibc's libraries (left to ld.so)")
    parser.add_argument("--interpreter", type=Path, required=True, help="the dynamic loader to set")
    parser.add_argument(
        "--lib-dir", type=Path, action="append", default=[], help="a buildInputs lib/ (repeatable)"
    )
    parser.add_argument("--input", action="append", default=[], help="NAME=DIR: a lib/ of NAME's buildInputs")
    parser.add_argument(
        "--search",
        action="append",
        default=[],
        help="NAME=PKG: addAutoPatchelfSearchPath of PKG's site-packages when fixing NAME",
    )
    parser.add_argument("--append-runpath", action="append", default=[], help="NAME=DIR")
    parser.add_argument("--ignore-missing", action="append", default=[], help="NAME=PATTERN")
    parser.add_argument("--no-strip", action="store_true", help="replay without the strip hook")
    parser.add_argument(
        "--cuda-table",
        action="store_true",
        help="give the wheels nix/cuda-libs.json names what nix/torch.nix gives them: search paths into "
        "their `needs`, their `buildInputs` (folders from --pkg), their `ignoreMissing`, and $ORIGIN",
    )
    parser.add_argument("--pkg", action="append", default=[], help="NAME=DIR: lib/ of nixpkgs package NAME")
    args = parser.parse_args(argv)

    wheels = sorted(w for p in args.wheels for w in ([p] if p.is_file() else p.glob("*.whl")))
    machine = MACHINES[args.arch]
    drvs = {drv.name: drv for drv in (install(w, args.work) for w in wheels)}

    def pairs(items: list[str]) -> list[tuple[str, str]]:
        return [tuple(item.split("=", 1)) for item in items]  # type: ignore[misc]

    for name, pkg in pairs(args.search):
        drvs[name].search_roots.append(drvs[pkg].site)
    for name, value in pairs(args.input):
        drvs[name].search.append(Path(value))
    for name, value in pairs(args.append_runpath):
        drvs[name].append_runpaths.append(value)
    for name, value in pairs(args.ignore_missing):
        drvs[name].ignore_missing.append(value)
    if args.cuda_table:
        nixpkgs = dict(pairs(args.pkg))
        for name, entry in json.loads(CUDA_TABLE.read_text())["packages"].items():
            if name in drvs:
                drvs[name].search_roots += [drvs[dep].site for dep in entry["needs"]]
                drvs[name].search += [Path(nixpkgs[lib]) for lib in entry["buildInputs"]]
                drvs[name].ignore_missing += entry["ignoreMissing"]
                drvs[name].append_runpaths.append("$ORIGIN")

    versions = {
        tool: subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        for tool in (args.strip, args.patchelf)
    }
    report: dict[str, Any] = {"tools": versions, "stripped_mb": {}, "strip_complaints": {}, "missing": {}}
    report["shrunk_rpaths"] = {}
    for drv in drvs.values():
        drv.search += args.lib_dir
        fixup(drv, args, machine, report)

    env = dict(os.environ, PYTHONPATH=":".join(str(d.site) for d in drvs.values()), PYTHONNOUSERSITE="1")
    env.pop("LD_LIBRARY_PATH", None)
    python = args.python.split()
    modules = [m for d in drvs.values() for m in extension_modules(d, args.ext_suffix)]
    with tempfile.TemporaryDirectory() as cwd:
        imported = subprocess.run(
            [*python, "-c", IMPORT_ALL, *modules], env=env, cwd=cwd, text=True, capture_output=True
        )
        report["imports"] = (imported.returncode, imported.stdout.strip() + imported.stderr[-2000:])
        if "torch" in drvs:
            trained = subprocess.run([*python, "-c", TRAIN], env=env, cwd=cwd, text=True, capture_output=True)
            report["train"] = (trained.returncode, trained.stdout.strip() + trained.stderr[-3000:])
    return report


if __name__ == "__main__":
    result = run()
    print(json.dumps(result, indent=2))
    failed = result["missing"] or result["imports"][0] or result.get("train", (0,))[0]
    sys.exit(1 if failed else 0)
