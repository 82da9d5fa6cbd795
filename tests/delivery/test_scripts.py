"""The SBOM script the images workflow runs: per-image SBOMs from uv.lock (the publish plan, the size
report and the reproducibility check have their own test files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import image_sbom
import pytest

from .conftest import ROOT

needs_uv = pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not on PATH")


def component_names(bom: dict) -> set[str]:
    return {c["name"] for c in bom["components"]}


@needs_uv
def test_backend_sbom_has_no_numeric_stack() -> None:
    bom = image_sbom.image_sbom("backend", "arm64")
    assert bom["bomFormat"] == "CycloneDX"
    assert bom["specVersion"] == "1.5"
    names = component_names(bom)
    assert {"fastapi", "uvicorn", "sqlalchemy"} <= names
    assert not names & {"torch", "numpy", "pandas", "triton"}
    assert {"name": "ktrdr:image", "value": "ktrdr-backend"} in bom["metadata"]["properties"]


@needs_uv
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_worker_cpu_sbom_names_the_cpu_wheel_and_no_cuda(arch: str) -> None:
    bom = image_sbom.image_sbom("worker-cpu", arch)
    names = component_names(bom)
    assert {"numpy", "pandas", "torch"} <= names
    assert not [n for n in names if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    torch = next(c for c in bom["components"] if c["name"] == "torch")
    assert torch["version"].endswith("+cpu")
    (wheel,) = torch["externalReferences"]
    machine = {"amd64": "x86_64", "arm64": "aarch64"}[arch]
    assert wheel["url"].endswith(f"cp313-cp313-manylinux_2_28_{machine}.whl")
    table = json.loads((ROOT / "nix" / "torch-cpu-wheels.json").read_text())
    locked = torch["version"].removesuffix("+cpu")
    assert wheel["hashes"][0]["content"] == table["wheels"][locked][f"cp313-{machine}"]["sha256"]


@needs_uv
def test_worker_gpu_sbom_keeps_the_cuda_packages_but_not_triton() -> None:
    names = component_names(image_sbom.image_sbom("worker-gpu", "amd64"))
    assert "torch" in names
    assert any(n.startswith("nvidia-") for n in names)
    assert "triton" not in names, "nix/torch-variants.json drops triton from the CUDA torch"


def test_sbom_refuses_an_architecture_the_image_is_not_built_for() -> None:
    with pytest.raises(SystemExit, match="not built for arm64"):
        image_sbom.image_sbom("worker-gpu", "arm64")


def test_sbom_refuses_a_wheel_table_without_the_locked_torch(tmp_path: Path) -> None:
    table = tmp_path / "wheels.json"
    table.write_text(json.dumps({"wheels": {"0.0.1": {}}}))
    component = {"name": "torch", "version": "2.14.0", "purl": "pkg:pypi/torch@2.14.0"}
    with pytest.raises(SystemExit, match=r"no CPU torch wheel for torch 2\.14\.0 \(cp313-x86_64\)"):
        image_sbom.cpu_torch_component(component, json.loads(table.read_text()), "amd64")
