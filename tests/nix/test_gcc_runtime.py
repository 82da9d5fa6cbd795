"""gcc's runtime in the images (nix/gcc-runtime.nix, nix/gcc-runtime.json): the wheels of the images'
sets link a store path of only the libraries the table names, the dev shells keep nixpkgs' list, the
swap refuses a nixpkgs whose manylinux list no longer holds gcc's lib output, and no installed wheel
needs a gcc library the table leaves out. That the copies load, and that no wheel's closure holds gcc's
lib output, the role checks show on the first real build (nix/checks.nix)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, NixEvalError, nix_eval, nix_inputs
from .test_nix_eval import evaluated

TABLE = json.loads((REPO / "nix" / "gcc-runtime.json").read_text())


def test_the_runtime_holds_gcc_libraries_only() -> None:
    assert TABLE["libraries"], "the table names no library"
    assert set(TABLE["libraries"]) <= set(TABLE["gccSonames"])
    assert "libgcc_s.so.1" not in TABLE["libraries"], "glibc carries libgcc_s.so.1"


@pytest.mark.nix
@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_the_images_wheels_link_the_cut_down_runtime_and_the_dev_shells_do_not(system: str) -> None:
    found = evaluated(system)["gccRuntime"]
    for variant, inputs in found["images"].items():
        assert "gcc-lib" not in inputs, variant
        assert found["name"] in inputs, variant
        assert "glibc" in inputs and "libX11" in inputs, "the rest of nixpkgs' list stays"
    for variant, inputs in found["dev"].items():
        assert "gcc-lib" in inputs and found["name"] not in inputs, variant


@pytest.mark.nix
def test_the_runtime_copies_each_library_and_drops_every_reference_to_gcc() -> None:
    found = evaluated("x86_64-linux")["gccRuntime"]
    script = found["script"]
    for name in TABLE["libraries"]:
        assert name in script
    assert "cp -L /nix/store/00000000000000000000000000000000-gcc-lib-" in script
    assert "patchelf --set-rpath /nix/store/00000000000000000000000000000000-glibc-" in script
    assert "remove-references-to -t /nix/store/00000000000000000000000000000000-gcc-lib-" in script
    assert found["disallowedReferences"] == ["gcc-lib"]


def swap_expr(inputs: Path, holds_gcc: bool) -> str:
    """nix/gcc-runtime.nix's overlay on a stand-in scope whose manylinux lists do or don't hold gcc."""
    return f"""
      let
        lib = import {inputs}/nixpkgs-lib/lib;
        drv = name: {{ inherit name; outPath = "/nix/store/00000000000000000000000000000000-${{name}}"; }};
        gcc = drv "gcc" // {{ lib = drv "gcc-lib"; version = "14"; }};
        list = [ (drv "glibc") ] ++ lib.optional {str(holds_gcc).lower()} gcc.lib;
        pkgs = {{
          stdenv.cc.cc = gcc;
          glibc = drv "glibc";
          patchelf = drv "patchelf";
          removeReferencesTo = drv "remove-references-to";
          runCommand = name: env: script: drv name;
          pythonManylinuxPackages = {{ manylinux1 = list; manylinux2010 = list; manylinux2014 = list; }};
        }};
        overlay = (import ./nix/gcc-runtime.nix {{ inherit lib; }}).overlay;
      in
      map (d: d.name) (overlay {{ inherit pkgs; }} {{ }}).pythonManylinuxPackages.manylinux2014
    """


@pytest.mark.nix
def test_the_swap_refuses_a_manylinux_list_without_gcc() -> None:
    inputs = nix_inputs()
    assert nix_eval(swap_expr(inputs, holds_gcc=True)) == ["glibc", "gcc-runtime-libs-14"]
    with pytest.raises(NixEvalError, match="no longer holds gcc's lib output"):
        nix_eval(swap_expr(inputs, holds_gcc=False))


def top(site: Path, path: Path) -> str:
    """The folder under site-packages a file belongs to, auditwheel's `<name>.libs` counted as `<name>`."""
    return path.relative_to(site).parts[0].removesuffix(".libs")


def gcc_libraries_needed(site: Path) -> dict[str, list[str]]:
    """Each gcc library (by soname) that an ELF file under ``site`` needs and its own package does not
    ship (autoPatchelf finds a wheel's own copy in its output first)."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf is not installed (binutils)")
    gcc = set(TABLE["gccSonames"])
    files = [path for path in site.rglob("*.so*") if path.is_file()]
    shipped = {(top(site, path), path.name) for path in files}
    needed: dict[str, list[str]] = {}
    for path in files:
        if path.is_symlink():
            continue
        out = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "(NEEDED)" in line:
                name = line.rsplit("[", 1)[1].rstrip("]")
                if name in gcc and (top(site, path), name) not in shipped:
                    needed.setdefault(name, []).append(str(path.relative_to(site)))
    return needed


def test_no_installed_wheel_needs_a_gcc_library_the_runtime_lacks() -> None:
    """This environment's wheels (Linux: the lock's x86_64 wheels, the CUDA torch among them)."""
    site = Path(sysconfig.get_paths()["purelib"])
    needed = gcc_libraries_needed(site)
    if not any(site.glob("torch/lib/*.so")):
        pytest.skip("torch is not installed here (the lean environment)")
    assert "libstdc++.so.6" in needed, "the scan found no C++ extension at all"
    missing: dict[str, Any] = {
        name: paths for name, paths in needed.items() if name not in TABLE["libraries"]
    }
    assert not missing, f"add these to nix/gcc-runtime.json's libraries: {missing}"


def test_the_scan_finds_a_library_the_runtime_would_lack(tmp_path: Path) -> None:
    """The scan itself: an extension that needs libquadmath, which the table leaves out, is reported."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    package = tmp_path / "pkg"
    package.mkdir()
    source = tmp_path / "ext.c"
    source.write_text("int answer(void) { return 42; }\n")
    for library in ("quadmath", "gomp"):
        output = str(package / f"ext_{library}.so")
        command = ["gcc", "-shared", "-fPIC", "-o", output, str(source), "-Wl,--no-as-needed", f"-l{library}"]
        subprocess.run(command, check=True)
    # A package that ships its own libgomp.so.1 (as torch's wheels do) does not need gcc's.
    shutil.copy(package / "ext_gomp.so", package / "libgomp.so.1")
    assert gcc_libraries_needed(tmp_path) == {"libquadmath.so.0": ["pkg/ext_quadmath.so"]}
