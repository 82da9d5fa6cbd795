"""Size budgets, from the lock (no Nix build): each image's whole-image estimate and its top layer
(bench.estimate: the layer plan, each package's measured store bytes in bench/package-sizes.json,
the runtime closure's measured parts in bench/runtime-closure.json) against the role table's
``image_budget_mb`` and ``app_budget_mb`` (pyproject.toml [tool.ktrdr.images.*], which the images
workflow's size summary holds the built images to); the lock's wheel bytes against
``wheels_budget_mb``; and the measurements cover exactly what the lock resolves, so a re-lock fails
here until ``python -m bench --only sizes`` has measured it again."""

from __future__ import annotations

import pytest

from bench import estimate, sizes
from bench.lock_sizes import ARCHES, MB, closure, is_cuda_only, resolve, roles

from .conftest import nix_inputs


def wheels_budget(name: str) -> int:
    """Compressed wheel bytes of the role's Python packages (the interpreter comes on top)."""
    return int(roles()[name]["wheels_budget_mb"]) * MB


def legs() -> list[tuple[str, str]]:
    return [(n, a) for n, r in roles().items() for a in ARCHES if f"{a}-linux" in r["platforms"]]


def x86_roles() -> list[str]:
    return [n for n, r in roles().items() if "x86_64-linux" in r["platforms"]]


@pytest.mark.parametrize("name", x86_roles())
def test_the_measured_sizes_cover_exactly_what_the_lock_resolves(name: str) -> None:
    """bench/package-sizes.json was measured on this lock: same packages, same versions (the CPU
    torch on the stand-in wheel bench.sizes names)."""
    measured = estimate.package_sizes()["roles"][name]
    locked = closure(name, "x86_64").versions
    assert set(measured) == set(locked), "re-run `python -m bench --only sizes` after changing uv.lock"
    for package, version in locked.items():
        if name == "worker-cpu" and package == "torch":
            stand_in = estimate.package_sizes()["torch_stand_in"]
            assert stand_in and measured[package]["version"].endswith("+cpu"), stand_in
            continue
        assert measured[package]["version"] == version, package


def test_the_measured_sizes_were_measured_with_todays_tables() -> None:
    """The prune, strip and variant tables decide what each package's store path holds: a change to
    one of them since the measurement makes every estimate stale."""
    recorded = estimate.package_sizes()["measured_with"]
    changed = [rel for rel, digest in sizes.measured_with().items() if recorded.get(rel) != digest]
    assert not changed, (
        f"{changed} changed since bench/package-sizes.json: run `python -m bench --only sizes`"
    )


@pytest.mark.parametrize("name", x86_roles())
def test_the_whole_image_estimate_is_within_the_image_budget(name: str) -> None:
    image = estimate.estimates(estimate.plan_from_lock())[name]
    assert image.total <= image.budget, f"{name}: {image.as_dict()}"
    # the base layer holds the whole runtime closure, not just the interpreter
    assert {"python", "glibc", "openssl", "sqlite", "tini", "ca-certificates"} <= set(image.parts["base"])


@pytest.mark.parametrize("name", x86_roles())
def test_an_app_only_release_re_pushes_at_most_the_app_budget(name: str) -> None:
    image = estimate.estimates(estimate.plan_from_lock())[name]
    assert set(image.parts["app"]) == {"ktrdr", "venv"}
    assert image.app <= image.app_budget, f"{name}: {image.as_dict()}"


def test_the_estimate_fails_a_role_over_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same sums against a budget one MB under them: the check can fail."""
    plan = estimate.plan_from_lock()
    image = estimate.estimate("worker-cpu", plan["worker-cpu"])
    tight = {**roles()["worker-cpu"], "image_budget_mb": image.total // MB - 1, "app_budget_mb": 0}
    monkeypatch.setitem(roles(), "worker-cpu", tight)
    over = estimate.estimate("worker-cpu", plan["worker-cpu"]).over
    assert len(over) == 2 and over[0].startswith("worker-cpu: ")


@pytest.mark.nix
@pytest.mark.parametrize("arch", ARCHES)
def test_the_lock_plan_is_the_plan_nix_builds(arch: str) -> None:
    """bench.estimate's plan from the lock is nix/layer-plan.nix's, as tier 2 evaluates it."""
    nix_inputs()
    assert estimate.plan_from_nix(arch) == estimate.plan_from_lock(arch)


@pytest.mark.parametrize(("name", "arch"), legs())
def test_the_lock_leaves_room_for_the_runtime_within_the_image_budget(name: str, arch: str) -> None:
    """Wheels only grow when installed, so wheel bytes plus the measured runtime closure must fit the
    budget (aarch64's packages are not measured; this is its check)."""
    budget = int(roles()[name]["image_budget_mb"]) * MB
    runtime = sum(estimate.runtime_parts(name).values())
    wheels = closure(name, arch).total
    assert wheels + runtime <= budget, f"{name} ({arch}): {wheels / MB:.0f} MB of wheels"


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


def test_worker_gpu_carries_cuda_torch_without_what_no_worker_imports() -> None:
    """nix/torch.nix drops triton (torch.compile's code generator) and the packages no worker
    imports (nix/torch-variants.json) from the CUDA torch."""
    gpu = closure("worker-gpu", "x86_64")
    assert {"torch", "nvidia-cudnn-cu13", "cuda-bindings", "sympy"} <= set(gpu.packages)
    assert not {"triton", "networkx", "jinja2", "fsspec", "filelock", "setuptools"} & set(gpu.packages)


def test_core_packages_are_shared_by_every_image() -> None:
    """ktrdr's core dependencies (no extras) are in every image: nix/images.nix's shared layer."""
    for arch in ARCHES:
        core = set(resolve({"extras": [], "torch": "none"}, arch).packages)
        assert "asyncpg" not in core
        for name, role in roles().items():
            if f"{arch}-linux" in role["platforms"]:
                assert core <= set(closure(name, arch).packages), (name, arch)
