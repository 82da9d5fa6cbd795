"""Each image's SBOM lists exactly the Python packages its environment holds.

The closures come from tier 2 (tests/nix/harness.nix: our real overlays evaluated with the real
uv2nix/pyproject.nix code, per architecture), the SBOMs from .github/scripts/image_sbom.py. Both take
what a torch variant drops and swaps from nix/torch-variants.json; the three readers of that table
(nix/torch.nix, image_sbom.py, bench/lock_sizes.py) are checked to agree on every package of the lock.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from functools import cache
from pathlib import Path

import image_sbom
import pytest
from image_roles import load_roles

from bench import lock_sizes
from tests.nix.conftest import nix_eval, nix_inputs
from tests.nix.test_nix_eval import evaluated

from .conftest import ROOT

pytestmark = pytest.mark.nix

SYSTEM = {"amd64": "x86_64-linux", "arm64": "aarch64-linux"}
LEGS = [(name, arch) for name, role in load_roles().items() for arch in role.arches]


@cache
def sbom(image: str, arch: str) -> dict:
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    return image_sbom.image_sbom(image, arch)


@pytest.mark.parametrize(("image", "arch"), LEGS, ids=[f"{i}-{a}" for i, a in LEGS])
def test_the_sbom_lists_exactly_the_image_closure(image: str, arch: str) -> None:
    closure = set(evaluated(SYSTEM[arch])["images"][image]["packages"]) - {"ktrdr"}
    listed = {c["name"] for c in sbom(image, arch)["components"]}
    assert listed == closure, {"sbom only": sorted(listed - closure), "image only": sorted(closure - listed)}


@pytest.mark.parametrize(("image", "arch"), LEGS, ids=[f"{i}-{a}" for i, a in LEGS])
def test_the_sbom_versions_are_the_image_versions(image: str, arch: str) -> None:
    """torch is the CPU wheel's version where the variant swaps it, the lock's version otherwise."""
    torch_attrs = evaluated(SYSTEM[arch])["images"][image]["torchAttrs"]
    components = {c["name"]: c for c in sbom(image, arch)["components"]}
    if torch_attrs:
        assert components["torch"]["version"] == torch_attrs["version"]
    else:
        assert "torch" not in components


def lock_names() -> list[str]:
    return sorted({p["name"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]})


@pytest.mark.parametrize("variant", ["none", "cpu", "cuda"])
def test_nix_the_sbom_and_bench_read_the_variant_table_alike(variant: str) -> None:
    names = lock_names()
    lib = nix_inputs() / "nixpkgs-lib" / "lib"
    nix_names = " ".join(f'"{n}"' for n in names)
    nix_dropped = nix_eval(
        f"let torch = import ./nix/torch.nix {{ lib = import {lib}; }}; in "
        f'builtins.filter (torch.droppedIn "{variant}") [ {nix_names} ]'
    )
    table = json.loads((ROOT / "nix" / "torch-variants.json").read_text())
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    assert image_sbom.dropped_packages(lock, table, variant) == sorted(nix_dropped)
    assert [n for n in names if lock_sizes.dropped_in(variant, n)] == sorted(nix_dropped)
    if variant != "none":
        assert nix_dropped, f"the {variant} variant drops nothing from this lock"


def test_the_check_fails_when_the_sbom_reads_another_table(tmp_path: Path) -> None:
    """With triton's (CUDA) or networkx's (CPU) drop removed from the table the SBOM reads, it no
    longer matches the image."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH")
    for name in ("pyproject.toml", "uv.lock", "nix/torch-variants.json", "nix/torch-cpu-wheels.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    table_file = tmp_path / "nix" / "torch-variants.json"
    table = json.loads(table_file.read_text())
    del table["variants"]["cuda"]["drop"]["triton"]
    del table["variants"]["cpu"]["drop"]["networkx"]
    table_file.write_text(json.dumps(table))
    for image, extra in (("worker-gpu", "triton"), ("worker-cpu", "networkx")):
        listed = {c["name"] for c in image_sbom.image_sbom(image, "amd64", root=tmp_path)["components"]}
        closure = set(evaluated(SYSTEM["amd64"])["images"][image]["packages"]) - {"ktrdr"}
        assert listed - closure == {extra}, image
