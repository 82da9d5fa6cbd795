"""Job-summary report of the built images: are they right-sized?

Per image and architecture: the real uncompressed and compressed sizes, next to the budget (the role
table's ``image_budget_mb``), the estimate (``python -m bench.estimate``: the whole image and its top
layer estimated from the layer plan, where measured, and the compressed wheel bytes of the image's
Python packages from the lock), the layer count, and the top layer (ktrdr and the venv: what an
app-only change re-pushes) next to its budget (``app_budget_mb``). Then, per architecture, the bytes
the images share. Fails (exit 1) when a built image, or its top layer, is larger than its budget.

Reads the artifacts each build leg of the images workflow uploads, one folder per image and
architecture: ``meta.json``, ``image.json`` (nix2container's image description: every layer's
diff_id and uncompressed size, the top layer last) and ``manifest.json`` (the manifest the registry
holds after the push: the compressed layers, in the same order). Prints Markdown for
$GITHUB_STEP_SUMMARY.

Usage: image_report.py ARTIFACTS_DIR [--estimates ESTIMATES.json]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from image_roles import ImageRole, load_roles

MB = 1_000_000
# OCI architecture -> the machine name bench.lock_sizes uses.
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


@dataclass(frozen=True)
class Layer:
    diff_id: str
    size: int
    compressed: int


@dataclass(frozen=True)
class BuiltImage:
    image: str
    arch: str
    layers: tuple[Layer, ...]

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def compressed(self) -> int:
        return sum(layer.compressed for layer in self.layers)

    @property
    def top(self) -> Layer:
        """The image's own layer, last: what an app-only change re-pushes."""
        return self.layers[-1]


def read_image(folder: Path) -> BuiltImage:
    """One build leg's image from its ``meta.json``, ``image.json`` and ``manifest.json``."""
    meta = json.loads((folder / "meta.json").read_text())
    nix_layers = json.loads((folder / "image.json").read_text())["layers"]
    pushed = json.loads((folder / "manifest.json").read_text())["layers"]
    if len(nix_layers) != len(pushed):
        raise ValueError(f"{folder}: {len(nix_layers)} layers built but {len(pushed)} in the registry")
    if not nix_layers:
        raise ValueError(f"{folder}: the image has no layers")
    layers = tuple(
        Layer(diff_id=n["digest"], size=int(n["size"]), compressed=int(p["size"]))
        for n, p in zip(nix_layers, pushed, strict=True)
    )
    return BuiltImage(image=meta["image"], arch=meta["arch"], layers=layers)


def mb(n: int, digits: int = 1) -> str:
    return f"{n / MB:,.{digits}f} MB"


def shared_bytes(a: BuiltImage, b: BuiltImage) -> tuple[int, int]:
    """Uncompressed and compressed bytes of the layers both images have (pulled once by a host)."""
    common = {layer.diff_id for layer in a.layers} & {layer.diff_id for layer in b.layers}
    shared = [layer for layer in a.layers if layer.diff_id in common]
    return sum(layer.size for layer in shared), sum(layer.compressed for layer in shared)


def distinct_bytes(images: list[BuiltImage]) -> tuple[int, int]:
    """What a host that pulls all of ``images`` stores: each layer counted once."""
    unique = {layer.diff_id: layer for img in images for layer in img.layers}
    return sum(layer.size for layer in unique.values()), sum(layer.compressed for layer in unique.values())


def over_budget(images: list[BuiltImage], roles: dict[str, ImageRole]) -> list[BuiltImage]:
    return [img for img in images if img.size > roles[img.image].image_budget_mb * MB]


def top_over_budget(images: list[BuiltImage], roles: dict[str, ImageRole]) -> list[BuiltImage]:
    return [img for img in images if img.top.size > roles[img.image].app_budget_mb * MB]


def estimate_of(estimates: dict[str, Any], img: BuiltImage) -> tuple[str, str]:
    """(whole image / top layer estimated from the layer plan, the lock's wheel bytes) for ``img``."""
    entry = estimates.get(img.image, {}).get(MACHINE[img.arch])
    if not entry:
        return "—", "—"
    planned = "—"
    if "image_bytes" in entry:
        planned = f"{mb(int(entry['image_bytes']))} / {mb(int(entry['app_bytes']), 2)}"
    wheels = mb(int(entry["wheel_bytes"]))
    if entry.get("stand_ins"):
        wheels += " (" + ", ".join(f"{n}: {w} stands in" for n, w in entry["stand_ins"].items()) + ")"
    return planned, wheels


def report(images: list[BuiltImage], roles: dict[str, ImageRole], estimates: dict[str, Any]) -> str:
    over = over_budget(images, roles)
    top_over = top_over_budget(images, roles)
    built = {(img.image, img.arch) for img in images}
    missing = [(n, a) for n, role in roles.items() for a in role.arches if (n, a) not in built]
    problems = [
        f"ktrdr-{i.image} ({i.arch}) {mb(i.size)} > {roles[i.image].image_budget_mb:,} MB" for i in over
    ] + [
        f"ktrdr-{i.image} ({i.arch}) top layer {mb(i.top.size, 2)} > {roles[i.image].app_budget_mb:,} MB"
        for i in top_over
    ]
    if problems:
        verdict = "**Over budget: " + ", ".join(problems) + ".**"
    else:
        verdict = f"**All {len(images)} built images are within their budgets.**"
    lines = [
        "## Images: right-sized?",
        "",
        verdict,
        "",
        "| image | arch | uncompressed | budget | compressed | estimate: image / top layer | "
        "lock's wheels | layers | top layer: an app-only change re-pushes | top budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for img in sorted(images, key=lambda i: (i.image, i.arch)):
        role = roles[img.image]
        size = mb(img.size) + (" ❌ over" if img in over else "")
        top = f"{mb(img.top.size, 2)} ({mb(img.top.compressed, 2)} compressed)"
        top += " ❌ over" if img in top_over else ""
        planned, wheels = estimate_of(estimates, img)
        lines.append(
            f"| ktrdr-{img.image} | {img.arch} | {size} | {role.image_budget_mb:,} MB | "
            f"{mb(img.compressed)} | {planned} | {wheels} | {len(img.layers)} | {top} | "
            f"{role.app_budget_mb:,} MB |"
        )
    lines += [
        "",
        "Uncompressed: the layers' tar sizes (what a host stores). Compressed: what the registry holds "
        "and a host downloads. Estimate: bench.estimate's whole image and top layer, from the layer plan, "
        "the measured packages and the runtime closure's measured parts (x86_64). The lock's wheels: the "
        "compressed wheel bytes of the image's Python packages from uv.lock.",
    ]
    if missing:
        lines.append("Not built in this run: " + ", ".join(f"ktrdr-{n} ({a})" for n, a in missing) + ".")
    for arch in sorted({img.arch for img in images}):
        same_arch = sorted((i for i in images if i.arch == arch), key=lambda i: i.image)
        if len(same_arch) < 2:
            continue
        lines += [
            "",
            f"### Shared layers ({arch})",
            "",
            "| images | shared uncompressed | shared compressed |",
            "|---|---:|---:|",
        ]
        for a, b in combinations(same_arch, 2):
            raw, packed = shared_bytes(a, b)
            lines.append(f"| {a.image} + {b.image} | {mb(raw)} | {mb(packed)} |")
        total_raw = sum(i.size for i in same_arch)
        total_packed = sum(i.compressed for i in same_arch)
        raw, packed = distinct_bytes(same_arch)
        lines += [
            "",
            f"A host pulling all {len(same_arch)} images ({arch}) downloads {mb(packed)} compressed "
            f"and stores {mb(raw)} instead of {mb(total_packed)} / {mb(total_raw)}: "
            f"{mb(total_raw - raw)} shared.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("--estimates", type=Path, help="python -m bench.estimate output")
    args = parser.parse_args(argv)
    folders = sorted(p.parent for p in args.artifacts.glob("*/meta.json"))
    if not folders:
        raise SystemExit(f"no image artifacts (*/meta.json) under {args.artifacts}")
    images = [read_image(f) for f in folders]
    estimates = json.loads(args.estimates.read_text()) if args.estimates else {}
    roles = load_roles()
    print(report(images, roles, estimates), end="")
    return 1 if over_budget(images, roles) or top_over_budget(images, roles) else 0


if __name__ == "__main__":
    raise SystemExit(main())
