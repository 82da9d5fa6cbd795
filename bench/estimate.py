"""Whole-image size estimates, layer by layer, from the plan the images are built with.

No image can be built here, so each image's size is estimated from its parts: the layer plan of
nix/images.nix and nix/layer-plan.nix (which packages go in which chained layer), each package's
bytes as the store holds it (installed from uv.lock, pruned and stripped: bench/package-sizes.json,
written by bench.sizes), and the runtime closure's parts (bench/runtime-closure.json, written by
tools/runtime_closure.py: the trimmed interpreter, glibc, openssl, sqlite...). Every figure is the
bytes of a tar layer (bench.sizes.tar_bytes): what the registry stores uncompressed.

The plan comes from tier 2 when the Nix inputs are on the machine (``plan_from_nix``: the names
nix/layer-plan.nix gives each layer, evaluated with the real uv2nix), else from the lock
(``plan_from_lock``: the same split, computed from bench.lock_sizes; tier 2 checks both agree).

Layers, bottom to top (nix/images.nix): base (runtime closure, tini, CA certificates, fake NSS),
common, ml, torch, extras (the role's own extras, e.g. the backend's asyncpg), app (ktrdr and the
venv: what an app-only release re-pushes). Budgets: the role table's ``image_budget_mb`` and
``app_budget_mb`` (pyproject.toml), which the size-budget test and the images workflow's report hold
the same images to.

``python -m bench.estimate`` prints, per image, x86_64's estimate and each architecture's lock wheel
bytes as JSON (what the images workflow's report shows next to the real sizes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bench import lock_sizes
from bench.sizes import tar_bytes

REPO = Path(__file__).resolve().parents[1]
PACKAGE_SIZES = REPO / "bench" / "package-sizes.json"
RUNTIME_CLOSURE = REPO / "bench" / "runtime-closure.json"
MB = 1_000_000
LAYERS = ("base", "common", "ml", "torch", "extras", "app")
ARCH = "x86_64"  # the architecture the package sizes were measured on
# The fake NSS (passwd, group) and the root skeleton's directories (nix/image-config.nix).
NSS_AND_ROOT = tar_bytes([200, 100], 12)


@cache
def package_sizes() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(PACKAGE_SIZES.read_text())
    return table


@cache
def runtime_closure() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(RUNTIME_CLOSURE.read_text())
    return table


def is_torch(name: str) -> bool:
    return name == "torch" or lock_sizes.is_cuda_only(name)


def plan_from_lock(arch: str = ARCH) -> dict[str, dict[str, list[str]]]:
    """nix/layer-plan.nix's split, from uv.lock: per role, the package names of each layer."""
    core = set(lock_sizes.resolve({"extras": [], "torch": "none"}, arch).packages) - {"ktrdr"}
    cpu_ml = set(lock_sizes.resolve({"extras": ["ml"], "torch": "cpu"}, arch).packages)
    ml = {n for n in cpu_ml if n not in core and n != "ktrdr" and not is_torch(n)}
    plans: dict[str, dict[str, list[str]]] = {}
    for name, role in lock_sizes.roles().items():
        if f"{arch}-linux" not in role["platforms"]:
            continue
        closure = set(lock_sizes.closure(name, arch).packages)
        plans[name] = {
            "common": sorted(core),
            "ml": sorted(ml) if role["torch"] != "none" else [],
            "torch": sorted(n for n in closure if is_torch(n)),
            "extras": sorted(n for n in closure if n not in core | ml and n != "ktrdr" and not is_torch(n)),
            "app": ["ktrdr"],
        }
    return plans


def plan_from_nix(arch: str = ARCH) -> dict[str, dict[str, list[str]]] | None:
    """The same split as tier 2 evaluates it (tests/nix/harness.nix's ``layers``), or None where the
    Nix inputs (KTRDR_NIX_INPUTS) or nix-instantiate are not on this machine."""
    inputs = os.environ.get("KTRDR_NIX_INPUTS")
    tool = shutil.which("nix-instantiate")
    if not inputs or not tool or not Path(inputs, "uv2nix").is_dir():
        return None
    expr = (
        f"(import ./tests/nix/harness.nix {{ inputs = {inputs}; workspaceRoot = ./.; "
        f'system = "{arch}-linux"; }}).layers'
    )
    out = subprocess.run(
        [tool, "--eval", "--strict", "--json", "-E", expr], cwd=REPO, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"tier-2 evaluation of the layer plan failed:\n{out.stderr}")
    layers = json.loads(out.stdout)
    roles = {n: r for n, r in lock_sizes.roles().items() if f"{arch}-linux" in r["platforms"]}
    return {
        name: {
            "common": sorted(layers["common"]),
            "ml": sorted(layers["ml"]) if role["torch"] != "none" else [],
            "torch": sorted(layers["torch"][name]),
            "extras": sorted(layers["extras"][name]),
            "app": ["ktrdr"],
        }
        for name, role in roles.items()
    }


def torch_scale(role: str) -> tuple[float, str]:
    """The factor the measured torch is scaled by, and why: worker-cpu's torch is measured on a
    stand-in CPU wheel (bench.sizes), scaled by the locked CPU wheel's size over the stand-in's."""
    stand_in = package_sizes()["torch_stand_in"]
    if role != "worker-cpu" or not stand_in:
        return 1.0, ""
    locked, wheel = lock_sizes.cpu_torch_size(lock_sizes.closure(role, ARCH).versions["torch"], ARCH)
    factor = locked / stand_in["wheel_bytes"]
    return (
        factor,
        f"torch measured on {stand_in['file']}, scaled by {wheel}'s wheel / its wheel = {factor:.3f}",
    )


def runtime_parts(role: str) -> dict[str, int]:
    """The base layer's store paths other than the Python packages, in tar bytes."""
    table = runtime_closure()
    wanted = {"interpreter", "base"}
    parts = {"python": table["python"]["runtime"]["tar_bytes"]}
    parts |= {name: part["tar_bytes"] for name, part in table["parts"].items() if part["where"] in wanted}
    parts["nss-and-root"] = NSS_AND_ROOT
    return parts


def venv_bytes(packages: dict[str, dict[str, Any]]) -> int:
    """pyproject.nix's venv: a symlink per top-level entry of site-packages, the scripts copied with
    their shebang rewritten, and its own few files and folders."""
    links = sum(p["top_level"] for p in packages.values())
    scripts = [
        p["script_bytes"] // max(p["scripts"], 1) for p in packages.values() for _ in range(p["scripts"])
    ]
    return tar_bytes([*scripts, 200], links + 12)


@dataclass
class Estimate:
    role: str
    layers: dict[str, int]  # layer -> tar bytes
    parts: dict[str, dict[str, int]]  # layer -> item -> tar bytes
    budget: int
    app_budget: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.layers.values())

    @property
    def app(self) -> int:
        return self.layers["app"]

    @property
    def over(self) -> list[str]:
        out = []
        if self.total > self.budget:
            out.append(f"{self.role}: {self.total / MB:.1f} MB > {self.budget / MB:.0f} MB")
        if self.app > self.app_budget:
            out.append(f"{self.role} app layer: {self.app / MB:.2f} MB > {self.app_budget / MB:.0f} MB")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "layers_mb": {k: round(v / MB, 2) for k, v in self.layers.items()},
            "image_mb": round(self.total / MB, 1),
            "budget_mb": self.budget // MB,
            "app_mb": round(self.app / MB, 2),
            "app_budget_mb": self.app_budget // MB,
            "image_bytes": self.total,
            "app_bytes": self.app,
            "notes": self.notes,
        }


def estimate(role: str, plan: dict[str, list[str]]) -> Estimate:
    """The role's image, layer by layer, from ``plan`` (one role's entry of a plan_from_* result)."""
    measured: dict[str, dict[str, Any]] = package_sizes()["roles"][role]
    row = lock_sizes.roles()[role]
    factor, note = torch_scale(role)
    parts: dict[str, dict[str, int]] = {"base": runtime_parts(role)}
    for layer in LAYERS[1:]:
        parts[layer] = {
            name: int(measured[name]["tar_bytes"] * (factor if name == "torch" else 1.0))
            for name in plan[layer]
        }
    closure = [n for layer in LAYERS[1:] for n in plan[layer]]
    parts["app"]["venv"] = venv_bytes({n: measured[n] for n in closure})
    return Estimate(
        role=role,
        layers={layer: sum(parts[layer].values()) for layer in LAYERS},
        parts=parts,
        budget=int(row["image_budget_mb"]) * MB,
        app_budget=int(row["app_budget_mb"]) * MB,
        notes=[note] if note else [],
    )


def estimates(plans: dict[str, dict[str, list[str]]] | None = None) -> dict[str, Estimate]:
    plans = plans or plan_from_nix() or plan_from_lock()
    return {role: estimate(role, plan) for role, plan in plans.items()}


def report() -> dict[str, Any]:
    """Per image: x86_64's whole-image estimate, and the lock's wheel bytes per architecture."""
    wheels = lock_sizes.estimates()
    found = estimates()
    return {
        name: {
            arch: {**entry, **(found[name].as_dict() if arch == ARCH and name in found else {})}
            for arch, entry in wheels[name].items()
        }
        for name in wheels
    }


if __name__ == "__main__":
    print(json.dumps(report(), indent=2))
