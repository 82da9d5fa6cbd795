"""Writes nix/cuda-libs.json: for the CUDA torch and every nvidia-*/cuda-* wheel of uv.lock (x86_64,
cp313), which shared libraries it ships (the folders, under site-packages, that hold them), which other
locked wheels provide what its ELF files list as NEEDED, and which NEEDED names no wheel and no build
input provides (the driver's libcuda.so.1 and optional transports), so nix/torch.nix can give each
wheel's derivation autoPatchelf search paths into exactly the siblings it links, and ignore only the
names listed.

Each nvidia wheel is its own store path, so `$ORIGIN` does not reach a sibling: libcusparse.so.12
needs libnvJitLink.so.13 from nvidia-nvjitlink. A search path into another derivation becomes a
runtime reference, so the "needs" graph must be acyclic (Nix cannot build a cycle); this tool fails
when it is not, and when a NEEDED name is neither provided nor a known optional transport.

    uv run python -m tools.cuda_libs [--wheels DIR ...]   # rewrites nix/cuda-libs.json

Wheels are taken from the given folders when there, else downloaded from the lock's URL into
``~/.cache/ktrdr/wheels``; either way checked against the lock's sha256. Needs `readelf` (binutils).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
from packaging.utils import parse_wheel_filename

from bench import lock_sizes

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO / "nix" / "cuda-libs.json"
ARCH = "x86_64"
CACHE = Path.home() / ".cache" / "ktrdr" / "wheels"

# NEEDED names that the build resolves without any wheel: glibc's libraries (autoPatchelf leaves
# them to the loader) and what uv2nix gives every manylinux wheel as buildInputs (nixpkgs'
# manylinux2014 set, which has libstdc++ and libgcc_s).
SYSTEM = (
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libanl.so.1",
    "libstdc++.so.6",
    "libgcc_s.so.1",
)

# NEEDED names that a nixpkgs package provides, which the table then lists as the wheel's buildInputs.
BUILD_INPUTS = {"libz.so.1": "zlib"}

# What a container does not have and the libraries only use when present: the driver's libraries
# (mounted by the container runtime), and the transports of NCCL/NVSHMEM/cuFile (InfiniBand verbs,
# RDMA, Mellanox, libfabric, MPI, OpenSHMEM, PMIx, UCX). Only these may be left unresolved.
OPTIONAL = (
    "libcuda.so.1",
    "libnvidia-ml.so.1",
    "libibverbs.so*",
    "librdmacm.so*",
    "libmlx5.so*",
    "libfabric.so*",
    "libmpi.so*",
    "liboshmem.so*",
    "libpmix.so*",
    "libucp.so*",
    "libucs.so*",
    "libuct.so*",
)


def is_optional(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in OPTIONAL)


def locked_packages() -> list[dict[str, Any]]:
    """torch and every nvidia-*/cuda-* package of the lock that the CUDA variant keeps."""
    return [
        p
        for p in lock_sizes.lock()["package"]
        if (p["name"] == "torch" or lock_sizes.is_cuda_only(p["name"]))
        and p["name"] not in lock_sizes.CUDA_DROPPED
        and p.get("wheels")
    ]


def locked_wheel(package: dict[str, Any]) -> dict[str, Any]:
    """The wheel uv.lock pins for cp313 on x86_64 Linux (the best-ranked tag, as the installer picks)."""
    priority = lock_sizes.tag_priority(ARCH)
    ranked = []
    for wheel in package["wheels"]:
        tags = parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3]
        ranks = [priority[tag] for tag in tags if tag in priority]
        if ranks:
            ranked.append((min(ranks), wheel))
    if not ranked:
        raise LookupError(f"{package['name']} has no cp313 {ARCH} wheel in uv.lock")
    return min(ranked, key=lambda item: item[0])[1]


def fetch(wheel: dict[str, Any], folders: Iterable[Path]) -> Path:
    name = wheel["url"].rsplit("/", 1)[1]
    path = next((f / name for f in folders if (f / name).is_file()), CACHE / name)
    if not path.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        with httpx.stream("GET", wheel["url"], follow_redirects=True, timeout=600) as response:
            response.raise_for_status()
            with partial.open("wb") as fh:
                for chunk in response.iter_bytes(1 << 20):
                    fh.write(chunk)
        partial.rename(path)
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    if f"sha256:{digest.hexdigest()}" != wheel["hash"]:
        raise ValueError(f"{path} does not match uv.lock's {wheel['hash']}")
    return path


def needed_entries(wheel: Path) -> dict[str, list[str]]:
    """{path in the wheel: NEEDED names} for every ELF file of the wheel."""
    result: dict[str, list[str]] = {}
    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        for info in zf.infolist():
            if info.is_dir():
                continue
            with zf.open(info) as fh:
                if fh.read(4) != b"\x7fELF":
                    continue
            path = Path(zf.extract(info, tmp))
            out = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True, check=True)
            result[info.filename] = re.findall(r"\(NEEDED\).*\[(.+?)\]", out.stdout)
            path.unlink()
    return result


def shared_objects(files: Iterable[str]) -> dict[str, str]:
    """{file name: folder under site-packages}, for the files autoPatchelf's cache would index."""
    return {
        PurePosixPath(f).name: str(PurePosixPath(f).parent)
        for f in files
        if fnmatch.fnmatch(PurePosixPath(f).name, "*.so*") and ".data/" not in f
    }


def build_table(elves: dict[str, tuple[str, dict[str, list[str]]]]) -> dict[str, Any]:
    """From {package: (version, {file: NEEDED})}, the table nix/torch.nix reads."""
    provided_by: dict[str, str] = {}
    for name, (_, files) in elves.items():
        for soname in shared_objects(files):
            provided_by.setdefault(soname, name)
    packages: dict[str, Any] = {}
    problems = []
    for name, (version, files) in sorted(elves.items()):
        own = shared_objects(files)
        needs: set[str] = set()
        ignore: set[str] = set()
        inputs: set[str] = set()
        for needed in sorted({n for names in files.values() for n in names}):
            if needed in own or needed in SYSTEM:
                continue
            if needed in BUILD_INPUTS:
                inputs.add(BUILD_INPUTS[needed])
            elif needed in provided_by:
                needs.add(provided_by[needed])
            elif is_optional(needed):
                ignore.add(needed)
            else:
                problems.append(
                    f"{name}: {needed} is provided by no locked wheel and is no known optional library"
                )
        packages[name] = {
            "version": version,
            "libDirs": sorted(set(own.values())),
            "needs": sorted(needs),
            "buildInputs": sorted(inputs),
            "ignoreMissing": sorted(ignore),
        }
    if problems:
        raise ValueError("\n".join(problems))
    if cycle := find_cycle({n: p["needs"] for n, p in packages.items()}):
        raise ValueError(f"the needs graph has a cycle: {' -> '.join(cycle)}")
    return {
        "comment": "Generated by tools/cuda_libs.py from the x86_64 cp313 wheels uv.lock pins; do not "
        "edit. libDirs: folders under site-packages holding the wheel's shared objects; needs: the "
        "locked wheels providing its other NEEDED libraries; buildInputs: the nixpkgs packages "
        "providing the rest; ignoreMissing: NEEDED names nothing provides (driver, optional transports).",
        "arch": ARCH,
        "packages": packages,
    }


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the directed graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, nargs="*", default=[], help="folders holding locked wheels")
    args = parser.parse_args()
    elves = {}
    for package in locked_packages():
        wheel = fetch(locked_wheel(package), args.wheels)
        elves[package["name"]] = (package["version"], needed_entries(wheel))
        print(f"{package['name']} {package['version']}: {len(elves[package['name']][1])} ELF files")
    TABLE.write_text(json.dumps(build_table(elves), indent=2) + "\n")
    print(f"wrote {TABLE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
