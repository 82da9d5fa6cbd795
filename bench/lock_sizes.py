"""Lock-derived image sizes (no Nix needed): per image role and architecture, which packages its
environment holds and how many wheel bytes they are, read from uv.lock (which records wheel sizes) and
nix/torch-cpu-wheels.json (the CPU torch). Mirrors nix/torch.nix through the table both read,
nix/torch-variants.json: the CPU variant drops torch's CUDA-only dependencies (nvidia-*, cuda-*,
triton) and the packages no worker imports (networkx, jinja2, fsspec, filelock, setuptools) and swaps
torch for the CPU wheel; the CUDA variant drops triton and the same never-imported packages.

``python -m bench.lock_sizes`` prints these figures as JSON (the images workflow's summary puts them
next to the real image sizes).
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

REPO = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "aarch64")
MB = 1_000_000
PYTHON_TAG = "cp313"


@cache
def variants() -> dict[str, Any]:
    """nix/torch-variants.json: what each torch variant drops from torch's dependencies and swaps."""
    table: dict[str, Any] = json.loads((REPO / "nix" / "torch-variants.json").read_text())
    return table


def _in_group(group: str, name: str) -> bool:
    spec = variants()["groups"][group]
    return name.startswith(tuple(spec["prefixes"])) or name in spec["names"]


def dropped_in(variant: str, name: str) -> bool:
    """Whether the ``variant`` ("none", "cpu", "cuda") drops ``name`` from torch's dependencies."""
    keys = variants()["variants"][variant]["drop"]
    return any(_in_group(k[1:], name) if k.startswith("@") else k == name for k in keys)


def is_cuda_only(name: str) -> bool:
    return _in_group("cuda-only", name)


# What nix/torch.nix's CUDA overlay drops from torch's dependencies by name (cudaDroppedDependencies):
# triton and the packages no worker imports.
CUDA_DROPPED = frozenset(k for k in variants()["variants"]["cuda"]["drop"] if not k.startswith("@"))


@cache
def lock() -> dict[str, Any]:
    return tomllib.loads((REPO / "uv.lock").read_text())


@cache
def roles() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]


def environment(arch: str) -> dict[str, str]:
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": "3.13",
        "python_full_version": "3.13.9",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": arch,
        "extra": "",
    }


@cache
def tag_priority(arch: str) -> dict[Tag, int]:
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(40, 4, -1)]
    platforms += [f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")] + [f"linux_{arch}"]
    tags = [*cpython_tags((3, 13), platforms=platforms), *compatible_tags((3, 13), platforms=platforms)]
    return {tag: rank for rank, tag in enumerate(tags)}


def wheel_size(package: dict[str, Any], arch: str) -> int:
    priority = tag_priority(arch)
    best: tuple[int, int] | None = None
    for wheel in package.get("wheels", []):
        tags = parse_wheel_filename(wheel["url"].rsplit("/", 1)[1])[3]
        ranks = [priority[tag] for tag in tags if tag in priority]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), wheel["size"])
    if best is None:
        raise LookupError(f"no cp313 wheel of {package['name']} for {arch}")
    return best[1]


@dataclass
class Closure:
    packages: dict[str, int]  # name -> wheel bytes (ktrdr itself counts 0)
    # name -> the wheel whose size stands in where the exact one is not known
    stand_ins: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)  # name -> the lock's version

    @property
    def total(self) -> int:
        return sum(self.packages.values())


def resolve(role: dict[str, Any], arch: str) -> Closure:
    env = environment(arch)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in lock()["package"]:
        by_name.setdefault(package["name"], []).append(package)

    def pick(dep: dict[str, Any]) -> dict[str, Any]:
        candidates = by_name[dep["name"]]
        if "version" in dep:
            candidates = [p for p in candidates if p["version"] == dep["version"]]
        if len(candidates) != 1:
            raise LookupError(f"ambiguous or missing lock entry for {dep}")
        return candidates[0]

    def applies(dep: dict[str, Any]) -> bool:
        return "marker" not in dep or Marker(dep["marker"]).evaluate(env)

    seen: dict[str, int] = {}
    versions: dict[str, str] = {}
    stand_ins: dict[str, str] = {}
    variant = role["torch"]
    todo: list[tuple[dict[str, Any], list[str]]] = [(by_name["ktrdr"][0], role["extras"])]
    while todo:
        package, extras = todo.pop()
        name = package["name"]
        first = name not in seen
        if first:
            seen[name] = 0 if name == "ktrdr" else wheel_size(package, arch)
            versions[name] = package["version"]
        deps = (package.get("dependencies", []) if first else []) + [
            dep for extra in extras for dep in package.get("optional-dependencies", {}).get(extra, [])
        ]
        if name == "torch":
            deps = [dep for dep in deps if not dropped_in(variant, dep["name"])]
            if first and "torch" in variants()["variants"][variant]["swap"]:
                seen[name], source = cpu_torch_size(package["version"], arch)
                if source != f"{package['version']} {PYTHON_TAG}-{arch}":
                    stand_ins[name] = source
        for dep in deps:
            if applies(dep):
                todo.append((pick(dep), dep.get("extra", [])))
    return Closure(seen, stand_ins, versions)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def cpu_torch_size(version: str, arch: str, wheels: dict[str, Any] | None = None) -> tuple[int, str]:
    """Bytes of the CPU torch wheel of ``version`` for cp313 on ``arch``, and which wheel they are of.

    nix/torch-cpu-wheels.json lacks some sizes (the aarch64 2.14.0 wheels: their index is not reachable
    from here and no public lock file records them). Then the nearest wheel of the same architecture
    whose size is known stands in (the closest version, then the closest Python), named in the
    result so that every figure built on it can say so. ``wheels`` replaces the table (tests).
    """
    if wheels is None:
        wheels = json.loads((REPO / "nix" / "torch-cpu-wheels.json").read_text())
    table = wheels["wheels"]
    key = f"{PYTHON_TAG}-{arch}"
    if size := table[version][key].get("size"):
        return int(size), f"{version} {key}"
    known = [
        (v, k, int(entry["size"]))
        for v, entries in table.items()
        for k, entry in entries.items()
        if k.endswith(f"-{arch}") and entry.get("size")
    ]
    if not known:
        raise LookupError(f"no CPU torch wheel for {arch} has a known size in nix/torch-cpu-wheels.json")
    target = _version_key(version)

    def distance(item: tuple[str, str, int]) -> tuple[tuple[int, ...], int]:
        v, k, _ = item
        version_gap = tuple(abs(a - b) for a, b in zip(_version_key(v), target, strict=False))
        return version_gap, abs(int(k.split("-")[0][2:]) - int(PYTHON_TAG[2:]))

    v, k, size = min(known, key=distance)
    return size, f"{v} {k}"


def closure(name: str, arch: str) -> Closure:
    return resolve(roles()[name], arch)


def figures() -> dict[str, dict[str, tuple[int, float]]]:
    """{role: {arch: (packages, wheel MB)}}, for docs and reports."""
    return {
        name: {
            arch: (len(c.packages), round(c.total / MB, 1))
            for arch in ARCHES
            if f"{arch}-linux" in role["platforms"]
            for c in [closure(name, arch)]
        }
        for name, role in roles().items()
    }


def estimates() -> dict[str, dict[str, dict[str, Any]]]:
    """{role: {arch: {packages, wheel_bytes, stand_ins}}}: what ``python -m bench.lock_sizes`` prints."""
    return {
        name: {
            arch: {"packages": len(c.packages), "wheel_bytes": c.total, "stand_ins": c.stand_ins}
            for arch in ARCHES
            if f"{arch}-linux" in role["platforms"]
            for c in [closure(name, arch)]
        }
        for name, role in roles().items()
    }


if __name__ == "__main__":
    print(json.dumps(estimates(), indent=2))
