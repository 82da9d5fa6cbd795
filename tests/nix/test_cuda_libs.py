"""nix/cuda-libs.json (written by tools/cuda_libs.py from the locked wheels' NEEDED entries) against
uv.lock, and the rules nix/torch.nix relies on: every CUDA wheel of the lock is described at its
locked version, the sibling graph the search paths follow is acyclic, and only the driver and optional
transports are left unresolved, by name. No Nix and no wheels needed."""

from __future__ import annotations

import itertools
import json
import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.cuda_libs import (
    OPTIONAL,
    build_table,
    find_cycle,
    is_optional,
    locked_packages,
    locked_wheel,
)

from .conftest import REPO


def table() -> dict[str, Any]:
    return json.loads((REPO / "nix" / "cuda-libs.json").read_text())


def test_every_locked_cuda_wheel_is_described_at_its_locked_version() -> None:
    packages = table()["packages"]
    locked = {p["name"]: p["version"] for p in locked_packages()}
    assert {name: entry["version"] for name, entry in packages.items()} == locked
    assert {"torch", "nvidia-cusparse", "nvidia-cusolver", "nvidia-nvjitlink", "cuda-bindings"} <= set(locked)
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    for package in lock["package"]:
        if package["name"].startswith(("nvidia-", "cuda-")):
            assert package["name"] in packages, f"{package['name']} is locked but not in nix/cuda-libs.json"
            locked_wheel(package)  # an x86_64 cp313 wheel exists


def test_the_search_path_graph_is_a_dag_over_described_wheels_with_libraries() -> None:
    packages = table()["packages"]
    assert find_cycle({name: entry["needs"] for name, entry in packages.items()}) is None
    for name, entry in packages.items():
        for dep in entry["needs"]:
            assert dep != name and dep in packages, (name, dep)
            assert packages[dep]["libDirs"], f"{name} searches {dep}, which has no libraries"


def test_siblings_found_by_readelf_are_searched() -> None:
    """The links that $ORIGIN cannot reach (issue 16): cuSPARSE needs nvJitLink, cuSOLVER needs
    cuBLAS/cuBLASLt, cuSPARSE and nvJitLink, torch needs the runtime, cuDNN, NCCL..."""
    packages = table()["packages"]
    assert packages["nvidia-cusparse"]["needs"] == ["nvidia-nvjitlink"]
    assert packages["nvidia-cusolver"]["needs"] == ["nvidia-cublas", "nvidia-cusparse", "nvidia-nvjitlink"]
    assert {"nvidia-cuda-runtime", "nvidia-cudnn-cu13", "nvidia-nccl-cu13", "nvidia-cublas"} <= set(
        packages["torch"]["needs"]
    )
    assert packages["nvidia-cudnn-cu13"]["buildInputs"] == ["zlib"]


def test_only_the_driver_and_optional_transports_are_ignored_and_by_name() -> None:
    packages = table()["packages"]
    ignored = {name for entry in packages.values() for name in entry["ignoreMissing"]}
    assert ignored, "the table ignores nothing: libcuda.so.1 at least comes from the driver"
    for name in ignored:
        assert is_optional(name), name
        assert not set(name) & set("*?["), name
    assert packages["torch"]["ignoreMissing"] == ["libcuda.so.1"]
    assert "*" not in OPTIONAL


def test_build_table_rejects_an_unknown_missing_library_and_a_cycle() -> None:
    ok = {"a": ("1", {"a/lib/liba.so.1": ["libb.so.1", "libcuda.so.1"]}), "b": ("2", {"b/lib/libb.so.1": []})}
    built = build_table(ok)["packages"]
    assert built["a"] == {
        "version": "1",
        "libDirs": ["a/lib"],
        "needs": ["b"],
        "buildInputs": [],
        "ignoreMissing": ["libcuda.so.1"],
    }
    with pytest.raises(ValueError, match=r"libnotthere\.so\.1"):
        build_table({"a": ("1", {"a/lib/liba.so.1": ["libnotthere.so.1"]})})
    cyclic = {"a": ("1", {"a/liba.so": ["libb.so"]}), "b": ("1", {"b/libb.so": ["liba.so"]})}
    with pytest.raises(ValueError, match="cycle"):
        build_table(cyclic)


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 12))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40))
    return {str(i): sorted({str(b) for a, b in edges if a == i and a < b}) for i in range(n)}


@given(dags(), st.data())
def test_find_cycle_finds_a_back_edge_and_nothing_in_a_dag(
    graph: dict[str, list[str]], data: st.DataObject
) -> None:
    assert find_cycle(graph) is None
    # Any edge i -> j (i < j) closed by j -> i makes a cycle, and the one reported is made of real edges.
    edges = [(a, b) for a, targets in graph.items() for b in targets]
    if edges:
        a, b = data.draw(st.sampled_from(edges))
        graph[b] = [*graph[b], a]
        cycle = find_cycle(graph)
        assert cycle is not None and cycle[0] == cycle[-1]
        assert all(nxt in graph[cur] for cur, nxt in itertools.pairwise(cycle))
