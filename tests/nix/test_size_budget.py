"""Lock-derived size budget (no Nix needed): the packages and wheel bytes of each image role and
architecture, computed by bench.lock_sizes from uv.lock and nix/torch-cpu-wheels.json, against the
budgets of the role table (pyproject.toml [tool.ktrdr.images.*], which the images workflow's size
summary reads too)."""

from __future__ import annotations

import pytest

from bench.lock_sizes import ARCHES, MB, closure, is_cuda_only, resolve, roles

# The least the Python runtime closure (interpreter, stdlib, glibc, openssl...) adds to every image:
# the low end of docs/nix.md's estimate for the trimmed interpreter's closure.
RUNTIME_CLOSURE_FLOOR = 100 * MB


def wheels_budget(name: str) -> int:
    """Compressed wheel bytes of the role's Python packages (the interpreter comes on top)."""
    return int(roles()[name]["wheels_budget_mb"]) * MB


def legs() -> list[tuple[str, str]]:
    return [(n, a) for n, r in roles().items() for a in ARCHES if f"{a}-linux" in r["platforms"]]


@pytest.mark.parametrize(("name", "arch"), legs())
def test_the_lock_leaves_room_for_the_runtime_within_the_image_budget(name: str, arch: str) -> None:
    """Wheels only grow when installed, so wheel bytes plus the runtime's floor must fit the budget
    the images workflow holds the built image to; a lock over it can never give a right-sized image."""
    budget = int(roles()[name]["image_budget_mb"]) * MB
    wheels = closure(name, arch).total
    assert wheels + RUNTIME_CLOSURE_FLOOR <= budget, f"{name} ({arch}): {wheels / MB:.0f} MB of wheels"


@pytest.mark.parametrize("arch", ARCHES)
def test_backend_is_lean(arch: str) -> None:
    backend = closure("backend", arch)
    forbidden = [p for p in backend.packages if p in {"torch", "numpy", "pandas"} or is_cuda_only(p)]
    assert forbidden == []
    assert {"fastapi", "uvicorn", "sqlalchemy", "pydantic-core"} <= set(backend.packages)
    assert backend.total < wheels_budget("backend"), f"backend wheels: {backend.total / MB:.1f} MB"


@pytest.mark.parametrize("arch", ARCHES)
def test_worker_cpu_has_torch_and_no_cuda(arch: str) -> None:
    worker = closure("worker-cpu", arch)
    assert {"torch", "numpy", "pandas"} <= set(worker.packages)
    assert [p for p in worker.packages if is_cuda_only(p)] == []
    assert worker.total < wheels_budget("worker-cpu"), f"worker-cpu wheels: {worker.total / MB:.1f} MB"


def test_worker_cpu_download_is_far_below_worker_gpu() -> None:
    cpu, gpu = closure("worker-cpu", "x86_64"), closure("worker-gpu", "x86_64")
    assert cpu.packages["torch"] > 0, "the CPU wheel's size must be known on x86_64"
    assert {p for p in gpu.packages if p.startswith("nvidia-")}, "worker-gpu must carry the nvidia wheels"
    assert set(cpu.packages) < set(gpu.packages)
    assert cpu.total * 5 < gpu.total, f"cpu {cpu.total / MB:.0f} MB vs gpu {gpu.total / MB:.0f} MB"


def test_worker_gpu_carries_cuda_torch_without_triton() -> None:
    """nix/torch.nix drops triton (torch.compile's code generator) from the CUDA torch."""
    gpu = closure("worker-gpu", "x86_64")
    assert {"torch", "nvidia-cudnn-cu13", "cuda-bindings"} <= set(gpu.packages)
    assert "triton" not in gpu.packages


def test_core_packages_are_shared_by_every_image() -> None:
    """ktrdr's core dependencies (no extras) are in every image: nix/images.nix's shared layer."""
    for arch in ARCHES:
        core = set(resolve({"extras": [], "torch": "none"}, arch).packages)
        assert "asyncpg" not in core
        for name, role in roles().items():
            if f"{arch}-linux" in role["platforms"]:
                assert core <= set(closure(name, arch).packages), (name, arch)
