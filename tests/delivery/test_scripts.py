"""The scripts the images workflow runs: per-image SBOMs from uv.lock, the multi-arch publish plan,
and the size/sharing report of the job summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import image_report
import image_sbom
import publish_index
import pytest
from image_roles import load_roles

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


def write_leg(root: Path, image: str, arch: str, layers: list[tuple[str, int, int]]) -> None:
    leg = root / f"{image}-{arch}"
    leg.mkdir(parents=True)
    meta = {
        "image": image,
        "arch": arch,
        "repository": f"ghcr.io/o/ktrdr-{image}",
        "digest": f"sha256:{image}{arch}",
    }
    (leg / "meta.json").write_text(json.dumps(meta))
    (leg / "image.json").write_text(json.dumps({"layers": [{"digest": d, "size": s} for d, s, _ in layers]}))
    (leg / "manifest.json").write_text(json.dumps({"layers": [{"size": c} for _, _, c in layers]}))


def every_leg(root: Path, skip: tuple[str, str] | None = None) -> None:
    for name, role in load_roles().items():
        for arch in role.arches:
            if (name, arch) != skip:
                write_leg(root, name, arch, [(f"sha256:base-{arch}", 100, 40), (f"sha256:{name}", 10, 5)])


def test_publish_merges_every_architecture_under_every_tag(tmp_path: Path) -> None:
    every_leg(tmp_path)
    commands = publish_index.plan(publish_index.collect(tmp_path), ["sha-abc1234", "latest"])
    by_repo = {cmd[5].rsplit(":", 1)[0]: cmd for cmd in commands}
    assert set(by_repo) == {f"ghcr.io/o/ktrdr-{n}" for n in load_roles()}
    backend = by_repo["ghcr.io/o/ktrdr-backend"]
    assert backend[:4] == ["docker", "buildx", "imagetools", "create"]
    assert "ghcr.io/o/ktrdr-backend:sha-abc1234" in backend
    assert "ghcr.io/o/ktrdr-backend:latest" in backend
    assert backend[-2:] == [
        "ghcr.io/o/ktrdr-backend@sha256:backendamd64",
        "ghcr.io/o/ktrdr-backend@sha256:backendarm64",
    ]
    assert by_repo["ghcr.io/o/ktrdr-worker-gpu"][-1] == "ghcr.io/o/ktrdr-worker-gpu@sha256:worker-gpuamd64"


def test_publish_refuses_an_image_with_a_missing_architecture(tmp_path: Path) -> None:
    every_leg(tmp_path, skip=("worker-cpu", "arm64"))
    with pytest.raises(SystemExit, match=r"ktrdr-worker-cpu: no build for \['arm64'\]"):
        publish_index.plan(publish_index.collect(tmp_path), ["latest"])


def test_report_counts_sizes_layers_and_shared_bytes(tmp_path: Path) -> None:
    mib = 1024 * 1024
    write_leg(
        tmp_path, "backend", "amd64", [("sha256:py", 100 * mib, 30 * mib), ("sha256:app", 2 * mib, mib)]
    )
    write_leg(
        tmp_path,
        "worker-cpu",
        "amd64",
        [("sha256:py", 100 * mib, 30 * mib), ("sha256:torch", 500 * mib, 200 * mib), ("sha256:w", mib, mib)],
    )
    images = [image_report.read_image(p.parent) for p in sorted(tmp_path.glob("*/meta.json"))]
    assert image_report.shared_bytes(images[0], images[1]) == (100 * mib, 30 * mib)
    assert image_report.distinct_bytes(images) == (603 * mib, 232 * mib)
    text = image_report.report(images)
    assert "| ktrdr-backend | amd64 | 102.0 MiB | 31.0 MiB | 2 |" in text
    assert "| ktrdr-worker-cpu | amd64 | 601.0 MiB | 231.0 MiB | 3 |" in text
    assert "| backend + worker-cpu | 100.0 MiB | 30.0 MiB |" in text


def test_report_refuses_a_manifest_that_does_not_match_the_build(tmp_path: Path) -> None:
    write_leg(tmp_path, "backend", "amd64", [("sha256:a", 1, 1)])
    (tmp_path / "backend-amd64" / "manifest.json").write_text(json.dumps({"layers": []}))
    with pytest.raises(ValueError, match="1 layers built but 0 in the registry"):
        image_report.read_image(tmp_path / "backend-amd64")
