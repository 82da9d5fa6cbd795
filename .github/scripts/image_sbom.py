"""CycloneDX SBOM of one image's Python packages, exported from uv.lock.

``uv export --format cyclonedx1.5`` lists what the lock resolves for the image's extras (the role
table says which). What nix/torch.nix does to the environment comes from the table it reads,
nix/torch-variants.json: every package the image's torch variant drops from torch's dependencies is
pruned (the CPU variant: ``nvidia-*``, ``cuda-*``, ``triton``; the CUDA variant: ``triton``), and a
swapped torch is the CPU wheel of the locked version, with the URL and sha256 from
nix/torch-cpu-wheels.json. The Nix runtime closure (Python itself, glibc, tini, CA certificates) is
not in this SBOM.

Usage: image_sbom.py IMAGE ARCH OUTPUT.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from image_roles import REPO_ROOT, ImageRole, load_roles

# The images' interpreter; its wheel tag selects the CPU wheel.
PYTHON_TAG = "cp313"
NIX_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def dropped_packages(lock: dict[str, Any], variants: dict[str, Any], variant: str) -> list[str]:
    """The lock's packages that ``variant`` drops from torch's dependencies (nix/torch-variants.json:
    a drop key is a package name, or ``@group`` for every name the group's prefixes or names match)."""

    def dropped(name: str) -> bool:
        for key in variants["variants"][variant]["drop"]:
            if not key.startswith("@"):
                if key == name:
                    return True
                continue
            group = variants["groups"][key[1:]]
            if name.startswith(tuple(group["prefixes"])) or name in group["names"]:
                return True
        return False

    return sorted({p["name"] for p in lock["package"] if dropped(p["name"])})


def uv_export(role: ImageRole, prune: list[str], root: Path) -> dict[str, Any]:
    """The lock's packages for the role's extras, as CycloneDX 1.5 JSON."""
    cmd = ["uv", "export", "--preview-features", "sbom-export", "--format", "cyclonedx1.5"]
    cmd += ["--frozen", "--no-default-groups", "--no-emit-project", "--quiet"]
    for extra in role.extras:
        cmd += ["--extra", extra]
    for name in prune:
        cmd += ["--prune", name]
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cpu_torch_component(component: dict[str, Any], wheels: dict[str, Any], arch: str) -> dict[str, Any]:
    """torch's component rewritten to the CPU wheel the worker-cpu image actually holds."""
    version = component["version"]
    key = f"{PYTHON_TAG}-{NIX_ARCH[arch]}"
    try:
        wheel = wheels["wheels"][version][key]
    except KeyError:
        raise SystemExit(f"no CPU torch wheel for torch {version} ({key}) in the wheel table") from None
    cpu_version = f"{version}+cpu"
    return {
        **component,
        "version": cpu_version,
        "purl": f"pkg:pypi/torch@{cpu_version.replace('+', '%2B')}",
        "externalReferences": [
            {
                "type": "distribution",
                "url": wheel["url"],
                "hashes": [{"alg": "SHA-256", "content": wheel["sha256"]}],
            }
        ],
    }


def image_sbom(
    image: str, arch: str, root: Path = REPO_ROOT, cpu_wheels: Path | None = None
) -> dict[str, Any]:
    """The SBOM of ``image`` built for ``arch`` (``amd64`` or ``arm64``)."""
    role = load_roles(root / "pyproject.toml")[image]
    if arch not in role.arches:
        raise SystemExit(f"image {image!r} is not built for {arch} (role table: {list(role.arches)})")
    variants = json.loads((root / "nix" / "torch-variants.json").read_text())
    lock = tomllib.loads((root / "uv.lock").read_text())
    bom = uv_export(role, dropped_packages(lock, variants, role.torch), root)
    swaps = variants["variants"][role.torch]["swap"]
    if "torch" in swaps:
        if swaps["torch"]["with"] != "cpu-wheel":
            raise SystemExit(f"torch-variants.json: unknown torch swap {swaps['torch']['with']!r}")
        wheels = json.loads((cpu_wheels or root / "nix" / "torch-cpu-wheels.json").read_text())
        bom["components"] = [
            cpu_torch_component(c, wheels, arch) if c["name"] == "torch" else c for c in bom["components"]
        ]
    bom["metadata"]["properties"] = [
        {"name": "ktrdr:image", "value": f"ktrdr-{image}"},
        {"name": "ktrdr:arch", "value": arch},
        {"name": "ktrdr:torch", "value": role.torch},
    ]
    return bom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("arch", choices=sorted(NIX_ARCH))
    parser.add_argument("output", type=Path)
    parser.add_argument("--cpu-wheels", type=Path, default=None, help="default: nix/torch-cpu-wheels.json")
    args = parser.parse_args()
    bom = image_sbom(args.image, args.arch, cpu_wheels=args.cpu_wheels)
    args.output.write_text(json.dumps(bom, indent=2) + "\n")
    print(f"{args.output}: {len(bom['components'])} components for ktrdr-{args.image} ({args.arch})")


if __name__ == "__main__":
    main()
