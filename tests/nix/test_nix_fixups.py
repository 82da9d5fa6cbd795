"""Tier 2 (where KTRDR_NIX_INPUTS is set): the fixups our overlays give each wheel's derivation, as
evaluated by tests/nix/harness.nix with the real uv2nix/pyproject.nix code: the CUDA wheels' search
paths, build inputs and ignore lists come from nix/cuda-libs.json, the CPU torch gets zlib, and the
strip hook gets what nix/strip.json says. That autoPatchelf then succeeds only a real build shows."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bench.sizes import strip_table, strips
from tools.cuda_libs import find_cycle, is_optional

from .conftest import REPO
from .test_nix_eval import evaluated, is_cuda_only

pytestmark = pytest.mark.nix

SITE = "lib/python3.13/site-packages"
STORE_PATH = re.compile(r"/nix/store/0{32}-(?P<name>[a-z0-9-]+?)-(?P<version>\d[^/]*)/(?P<rest>\S*)")


def cuda_table() -> dict[str, Any]:
    return json.loads((REPO / "nix" / "cuda-libs.json").read_text())["packages"]


def gpu_fixups() -> dict[str, Any]:
    image = evaluated("x86_64-linux")["images"]["worker-gpu"]
    fixups = dict(image["cudaLibFixups"])
    torch = image["torchAttrs"]
    fixups["torch"] = {
        "ignore": torch["autoPatchelfIgnoreMissingDeps"],
        "appendRunpaths": torch["appendRunpaths"],
        "preFixup": torch["preFixup"],
        "buildInputs": torch["buildInputs"],
    }
    return fixups


def searched(pre_fixup: str) -> list[tuple[str, str, str]]:
    """(package, version, path under its output) of each addAutoPatchelfSearchPath line."""
    found = []
    for line in pre_fixup.splitlines():
        command, _, path = line.partition(" ")
        assert command == "addAutoPatchelfSearchPath", line
        match = STORE_PATH.fullmatch(path)
        assert match, path
        found.append((match["name"], match["version"], match["rest"]))
    return found


def test_each_cuda_wheel_searches_exactly_the_siblings_the_table_says() -> None:
    table = cuda_table()
    fixups = gpu_fixups()
    assert set(table) - {"cuda-toolkit"} <= set(fixups) | {"cuda-toolkit"}
    for name, fixup in fixups.items():
        entry = table[name]
        expected = [
            (dep, table[dep]["version"], f"{SITE}/{directory}")
            for dep in entry["needs"]
            for directory in table[dep]["libDirs"]
        ]
        assert searched(fixup["preFixup"]) == expected, name
        assert fixup["ignore"] == entry["ignoreMissing"], name
        assert all(is_optional(lib) for lib in fixup["ignore"]), name
        assert set(entry["buildInputs"]) <= set(fixup["buildInputs"]), name
        assert fixup["appendRunpaths"][0] == "$ORIGIN" and "/usr/lib64" in fixup["appendRunpaths"], name
    assert {dep for dep, _, _ in searched(fixups["nvidia-cusparse"]["preFixup"])} == {"nvidia-nvjitlink"}
    assert "zlib" in fixups["nvidia-cudnn-cu13"]["buildInputs"]


def test_the_references_the_search_paths_create_form_a_dag() -> None:
    """A search path into another derivation becomes a runtime reference; Nix cannot build a cycle."""
    graph = {
        name: sorted({dep for dep, _, _ in searched(fixup["preFixup"])})
        for name, fixup in gpu_fixups().items()
    }
    assert find_cycle(graph) is None
    assert any(graph.values())


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_the_cpu_torch_gets_zlib_for_its_bundled_libraries(system: str) -> None:
    """The aarch64 wheels' libgfortran.so.5 needs libz.so.1, which nixpkgs' manylinux set lacks."""
    torch = evaluated(system)["images"]["worker-cpu"]["torchAttrs"]
    assert "zlib" in torch["buildInputs"]
    assert torch["autoPatchelfIgnoreMissingDeps"] is None


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_the_strip_hook_gets_what_strip_json_says(system: str) -> None:
    table = strip_table()
    for image in evaluated(system)["images"].values():
        for package, attrs in image["strip"].items():
            if attrs["format"] != "wheel" or not strips(package):
                assert attrs["stripDebugFlags"] is None and attrs["stripAllList"] is None, package
                continue
            assert attrs["stripDebugFlags"] == table["debugFlags"], package
            extra = table["stripAll"].get(package)
            assert attrs["stripAllList"] == ([f"{SITE}/{p}" for p in extra["paths"]] if extra else None)
            assert attrs["stripAllFlags"] == (extra["flags"] if extra else None)
    assert not any(is_cuda_only(name) for name in table["stripAll"])
