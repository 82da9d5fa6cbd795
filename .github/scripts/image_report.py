"""Job-summary table of the built images: sizes, layer counts and the bytes shared between images.

Reads the artifacts each build leg of the images workflow uploads, one folder per image and
architecture: ``image.json`` (nix2container's image description: every layer's diff_id and
uncompressed size) and ``manifest.json`` (the manifest the registry holds after the push: the
compressed layers, in the same order). Prints Markdown for $GITHUB_STEP_SUMMARY.

Usage: image_report.py ARTIFACTS_DIR
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path


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


def read_image(folder: Path) -> BuiltImage:
    """One build leg's image from its ``meta.json``, ``image.json`` and ``manifest.json``."""
    meta = json.loads((folder / "meta.json").read_text())
    nix_layers = json.loads((folder / "image.json").read_text())["layers"]
    pushed = json.loads((folder / "manifest.json").read_text())["layers"]
    if len(nix_layers) != len(pushed):
        raise ValueError(f"{folder}: {len(nix_layers)} layers built but {len(pushed)} in the registry")
    layers = tuple(
        Layer(diff_id=n["digest"], size=int(n["size"]), compressed=int(p["size"]))
        for n, p in zip(nix_layers, pushed, strict=True)
    )
    return BuiltImage(image=meta["image"], arch=meta["arch"], layers=layers)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def shared_bytes(a: BuiltImage, b: BuiltImage) -> tuple[int, int]:
    """Uncompressed and compressed bytes of the layers both images have (pulled once by a host)."""
    common = {layer.diff_id for layer in a.layers} & {layer.diff_id for layer in b.layers}
    shared = [layer for layer in a.layers if layer.diff_id in common]
    return sum(layer.size for layer in shared), sum(layer.compressed for layer in shared)


def distinct_bytes(images: list[BuiltImage]) -> tuple[int, int]:
    """What a host that pulls all of ``images`` stores: each layer counted once."""
    unique = {layer.diff_id: layer for img in images for layer in img.layers}
    return sum(layer.size for layer in unique.values()), sum(layer.compressed for layer in unique.values())


def report(images: list[BuiltImage]) -> str:
    lines = [
        "## Images",
        "",
        "| image | arch | uncompressed | compressed | layers |",
        "|---|---|---:|---:|---:|",
    ]
    for img in sorted(images, key=lambda i: (i.image, i.arch)):
        sizes = f"{human(img.size)} | {human(img.compressed)}"
        lines.append(f"| ktrdr-{img.image} | {img.arch} | {sizes} | {len(img.layers)} |")
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
            lines.append(f"| {a.image} + {b.image} | {human(raw)} | {human(packed)} |")
        total_raw = sum(i.size for i in same_arch)
        total_packed = sum(i.compressed for i in same_arch)
        raw, packed = distinct_bytes(same_arch)
        lines += [
            "",
            f"A host pulling all {len(same_arch)} images ({arch}) downloads {human(packed)} compressed "
            f"and stores {human(raw)} instead of {human(total_packed)} / {human(total_raw)}: "
            f"{human(total_raw - raw)} shared.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path)
    args = parser.parse_args()
    folders = sorted(p.parent for p in args.artifacts.glob("*/meta.json"))
    if not folders:
        raise SystemExit(f"no image artifacts (*/meta.json) under {args.artifacts}")
    print(report([read_image(f) for f in folders]), end="")


if __name__ == "__main__":
    main()
