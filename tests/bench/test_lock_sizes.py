"""bench.lock_sizes: the download figures per role and architecture count the CPU torch wheel on both
architectures (a stand-in wheel, named, where the table lacks the exact size), and the drops come from
nix/torch-variants.json, the table nix/torch.nix reads."""

from __future__ import annotations

import pytest

from bench import lock_sizes

MB = lock_sizes.MB


def test_aarch64_worker_cpu_download_counts_the_cpu_torch_wheel() -> None:
    arm = lock_sizes.closure("worker-cpu", "aarch64")
    x86 = lock_sizes.closure("worker-cpu", "x86_64")
    assert arm.packages["torch"] > 100 * MB, "torch must be in the aarch64 sum"
    assert arm.total - arm.packages["torch"] < 60 * MB
    # The 2.14.0 aarch64 wheel's size is not in the table: a named stand-in fills it, x86_64 is exact.
    assert arm.stand_ins == {"torch": "2.13.0 cp312-aarch64"}
    assert x86.stand_ins == {}
    assert lock_sizes.estimates()["worker-cpu"]["aarch64"]["stand_ins"] == {"torch": "2.13.0 cp312-aarch64"}


def wheel_table(**sizes: int | None) -> dict:
    """A fabricated CPU-wheel table: keys like v2_14_0__cp313_aarch64 -> size."""
    wheels: dict = {}
    for key, size in sizes.items():
        version, tag = key.removeprefix("v").split("__")
        wheels.setdefault(version.replace("_", "."), {})[tag.replace("_", "-", 1)] = {"size": size}
    return {"wheels": wheels}


def test_the_exact_size_wins_over_any_stand_in() -> None:
    table = wheel_table(v2_14_0__cp313_aarch64=7, v2_13_0__cp313_aarch64=5)
    assert lock_sizes.cpu_torch_size("2.14.0", "aarch64", table) == (7, "2.14.0 cp313-aarch64")


def test_a_missing_size_takes_the_nearest_wheel_of_the_same_arch() -> None:
    table = wheel_table(
        v2_14_0__cp313_aarch64=None,
        v2_14_0__cp313_x86_64=9,
        v2_13_0__cp312_aarch64=5,
        v2_11_0__cp313_aarch64=3,
        v2_14_0__cp310_aarch64=4,
    )
    # same version, another Python, beats an older version; another arch never stands in
    assert lock_sizes.cpu_torch_size("2.14.0", "aarch64", table) == (4, "2.14.0 cp310-aarch64")
    del table["wheels"]["2.14.0"]["cp310-aarch64"]
    assert lock_sizes.cpu_torch_size("2.14.0", "aarch64", table) == (5, "2.13.0 cp312-aarch64")


def test_no_known_size_for_the_arch_is_an_error() -> None:
    table = wheel_table(v2_14_0__cp313_aarch64=None, v2_14_0__cp313_x86_64=9)
    with pytest.raises(LookupError, match="aarch64"):
        lock_sizes.cpu_torch_size("2.14.0", "aarch64", table)


@pytest.mark.parametrize(
    ("variant", "name", "dropped"),
    [
        ("cpu", "nvidia-cublas", True),
        ("cpu", "cuda-bindings", True),
        ("cpu", "triton", True),
        ("cpu", "numpy", False),
        ("cuda", "triton", True),
        ("cuda", "nvidia-cublas", False),
        ("none", "triton", False),
        ("cpu", "networkx", True),
        ("cuda", "setuptools", True),
        ("cpu", "sympy", False),
        ("none", "jinja2", False),
    ],
)
def test_drops_follow_the_variant_table(variant: str, name: str, dropped: bool) -> None:
    assert lock_sizes.dropped_in(variant, name) is dropped


def test_a_dropped_edge_keeps_a_package_something_else_needs() -> None:
    """markupsafe is jinja2's (dropped with torch's edge to it) and Mako's (Alembic's): it stays."""
    cpu = lock_sizes.closure("worker-cpu", "x86_64").packages
    assert "jinja2" not in cpu and "markupsafe" in cpu
