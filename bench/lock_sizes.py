"""Lock-derived image sizes (no Nix needed): per image role and architecture, which packages its
environment holds and how many wheel bytes they are, read from uv.lock (which records wheel sizes) and
nix/torch-cpu-wheels.json (the CPU torch). Mirrors nix/torch.nix: the CPU variant drops torch's
CUDA-only dependencies (nvidia-*, cuda-*, triton), the CUDA variant drops triton."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import parse_wheel_filename

REPO = Path(__file__).resolve().parents[1]
ARCHES = ("x86_64", "aarch64")
MB = 1_000_000
# What nix/torch.nix's CUDA overlay drops from torch's dependencies (cudaDroppedDependencies).
CUDA_DROPPED = frozenset({"triton"})


def is_cuda_only(name: str) -> bool:
    return name.startswith(("nvidia-", "cuda-")) or name == "triton"


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
    todo: list[tuple[dict[str, Any], list[str]]] = [(by_name["ktrdr"][0], role["extras"])]
    while todo:
        package, extras = todo.pop()
        name = package["name"]
        first = name not in seen
        if first:
            seen[name] = 0 if name == "ktrdr" else wheel_size(package, arch)
        deps = (package.get("dependencies", []) if first else []) + [
            dep for extra in extras for dep in package.get("optional-dependencies", {}).get(extra, [])
        ]
        if name == "torch" and role["torch"] == "cpu":
            deps = [dep for dep in deps if not is_cuda_only(dep["name"])]
            seen[name] = cpu_torch_size(package["version"], arch)
        if name == "torch" and role["torch"] == "cuda":
            deps = [dep for dep in deps if dep["name"] not in CUDA_DROPPED]
        for dep in deps:
            if applies(dep):
                todo.append((pick(dep), dep.get("extra", [])))
    return Closure(seen)


def cpu_torch_size(version: str, arch: str) -> int:
    table = json.loads((REPO / "nix" / "torch-cpu-wheels.json").read_text())
    size = table["wheels"][version][f"cp313-{arch}"]["size"]
    # The table lacks some sizes (the aarch64 wheels); count those as unknown, i.e. 0, and say so below.
    return size or 0


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
