"""Tier 2 (where KTRDR_NIX_INPUTS is set): which checks `nix flake check` builds on a stock runner, and
that every role's checks are still a package (the images workflow's legs build `.#<role>-checks`).

`nix flake check` realises what it checks; the CUDA role's environment is 2.8 GB of wheels plus
4.3 GB installed, too much for a stock runner next to CPython's build and the Go toolchain
(docs/nix.md, "Store budget per CI job"), so only the worker-gpu leg, which frees the disk, builds it.
"""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest

from .conftest import NIX_FLAGS, REPO, NixEvalError, nix_eval, nix_inputs

pytestmark = pytest.mark.nix

ROLES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]
INPUTS = {
    "nixpkgs": "nixpkgs-lib",
    "pyproject-nix": "pyproject-nix",
    "uv2nix": "uv2nix",
    "pyproject-build-systems": "pyproject-build-systems",
    "nix2container": "nix2container",
}


def fits_stock_runner() -> dict[str, bool]:
    lib = nix_inputs() / "nixpkgs-lib" / "lib"
    unused = "pkgs project roles pythonSets envs images backendTestEnv src"
    args = " ".join(f"{a} = null;" for a in unused.split())
    return nix_eval(
        f"let checks = import ./nix/checks.nix {{ lib = import {lib}; {args} }}; "
        "in builtins.mapAttrs (_: checks.fitsStockRunner) "
        "(builtins.fromTOML (builtins.readFile ./pyproject.toml)).tool.ktrdr.images"
    )


def test_flake_check_leaves_out_exactly_the_cuda_role() -> None:
    fits = fits_stock_runner()
    assert set(fits) == set(ROLES)
    assert {name for name, ok in fits.items() if not ok} == {
        name for name, role in ROLES.items() if role["torch"] == "cuda"
    }
    assert fits["backend"] and fits["worker-cpu"] and not fits["worker-gpu"]


def flake_attr_names(attribute: str, needs: str) -> list[str]:
    """The names under ``.#attribute`` of the real flake, its inputs overridden by the snapshots
    (known without instantiating nixpkgs); skips when ``needs`` is not tracked by git."""
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", needs], cwd=REPO)
    if tracked.returncode != 0:
        pytest.skip("the flake's files are not tracked by git")
    inputs = nix_inputs()
    overrides = [a for n, p in INPUTS.items() for a in ("--override-input", n, f"path:{inputs / p}")]
    argv = ["nix", *NIX_FLAGS, "eval", "--json", f".#{attribute}", "--apply", "builtins.attrNames"]
    proc = subprocess.run(
        [*argv, *overrides, "--no-write-lock-file"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    return list(json.loads(proc.stdout))


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux"])
def test_every_role_of_the_system_has_its_checks_as_a_package(system: str) -> None:
    names = set(flake_attr_names(f"packages.{system}", "nix/system.nix"))
    expected = {f"{name}-checks" for name, role in ROLES.items() if system in role["platforms"]}
    assert {n for n in names if n.endswith("-checks")} == expected


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux", "aarch64-darwin"])
def test_the_flake_has_the_cli_and_the_demo_as_apps(system: str) -> None:
    """`nix run .` and `nix run .#demo` (nix/apps.nix, wired by nix/system.nix and flake.nix), on
    Linux and on macOS."""
    assert flake_attr_names(f"apps.{system}", "nix/apps.nix") == ["default", "demo"]


def test_intel_macos_has_the_cli_but_no_demo() -> None:
    """uv.lock has no torch wheel for x86_64-darwin (nix/apps.nix)."""
    assert flake_attr_names("apps.x86_64-darwin", "nix/apps.nix") == ["default"]
    assert flake_attr_names("apps", "nix/apps.nix") == sorted(
        ["x86_64-linux", "aarch64-linux", "aarch64-darwin", "x86_64-darwin"]
    )


def flake_checks_with_interpreter(interpreter: str) -> list[str]:
    """The names of checks.nix's `flake` on a stand-in runtime interpreter at /nix/store/x-python3."""
    lib = nix_inputs() / "nixpkgs-lib" / "lib"
    return nix_eval(
        f"""
        let
          lib = import {lib};
          checks = import ./nix/checks.nix {{
            inherit lib;
            pkgs = {{ runCommand = name: _env: _script: name; closureInfo = _: "closure-info"; }};
            project = {{ torch.isCudaOnly = _: false; }};
            roles = {{ }};
            pythonSets.none.python = {{
              outPath = "/nix/store/x-python3";
              interpreter = "{interpreter}";
              sitePackages = "lib/python3.13/site-packages";
            }};
            envs = {{ }};
            images = {{ }};
            backendTestEnv = null;
            src = null;
          }};
        in
        builtins.attrNames checks.flake
        """
    )


def test_the_checks_refuse_a_runtime_interpreter_that_runs_another_python() -> None:
    """cpython's `interpreter` comes from `self`: a wrong `self` would point every venv elsewhere."""
    assert "runtime-python" in flake_checks_with_interpreter("/nix/store/x-python3/bin/python3.13")
    with pytest.raises(NixEvalError, match="runtime python's interpreter is /nix/store/y-python3"):
        flake_checks_with_interpreter("/nix/store/y-python3/bin/python3.13")
