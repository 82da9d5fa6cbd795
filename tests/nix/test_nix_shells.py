"""Tier 2 (where KTRDR_NIX_INPUTS is set): the dev shells (nix/shells.nix) as evaluated by
tests/nix/harness.nix: what each system's shells hold, the uv settings, the interpreter they are built
on, the editable package's source, and what the shell hook does when it runs (in bash, here)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, harness, nix_eval, nix_inputs
from .test_nix_eval import evaluated, flake_eval, is_cuda_only, wheel_table

pytestmark = pytest.mark.nix

DARWIN = ("aarch64-darwin", "x86_64-darwin")


@cache
def shells(system: str) -> dict[str, Any]:
    return nix_eval(f"({harness(nix_inputs(), system)}).shells")


@cache
def cpu_torch_url(system: str) -> str:
    return str(nix_eval(f"({harness(nix_inputs(), system)}).cpuTorchUrl"))


def locked_torch_wheels() -> list[str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (torch,) = [p for p in lock["package"] if p["name"] == "torch"]
    return [wheel["url"] for wheel in torch["wheels"]]


def test_dev_shells_exist_for_linux_and_macos() -> None:
    result = evaluated("x86_64-linux")
    assert result["devSystems"] == [*result["systems"], *DARWIN]
    # The real flake: dev shells for all four systems, packages and checks for the images' two only.
    assert flake_eval("builtins.attrNames", ".#devShells") == sorted(result["devSystems"])
    assert flake_eval("builtins.attrNames", ".#packages") == sorted(result["systems"])


def test_the_shells_use_the_venv_and_tell_uv_to_keep_out() -> None:
    for name, shell in shells("x86_64-linux").items():
        assert shell["packages"] == [f"ktrdr-{name}-dev-env", "uv", "nixfmt"]
        assert shell["env"]["UV_NO_SYNC"] == "1"
        assert shell["env"]["UV_PYTHON_DOWNLOADS"] == "never"
        assert shell["env"]["UV_PYTHON"].endswith("/bin/python3.13")


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux", "aarch64-darwin"])
def test_the_default_shell_has_the_cpu_torch_from_wheels_only(system: str) -> None:
    default, backend = shells(system)["default"], shells(system)["backend"]
    packages = set(default["venv"])
    assert {"torch", "numpy", "pandas", "pytest", "ruff", "mypy", "asyncpg"} <= packages
    assert not [p for p in packages if is_cuda_only(p)]
    assert not {"torch", "numpy", "pandas"} & set(backend["venv"])
    for shell in (default, backend):
        formats = dict(shell["formats"])
        assert formats.pop("ktrdr") == "local"
        assert set(formats.values()) == {"wheel"}, [p for p, f in formats.items() if f != "wheel"]


def test_the_dev_torch_is_the_cpu_table_on_linux_and_the_locked_macos_wheel_on_a_mac() -> None:
    entry = wheel_table()["wheels"]
    assert any(cpu_torch_url("x86_64-linux") == e["cp313-x86_64"]["url"] for e in entry.values())
    mac = cpu_torch_url("aarch64-darwin")
    assert mac in locked_torch_wheels() and "macosx" in mac and mac.endswith("_arm64.whl")


def test_x86_64_macos_gets_the_backend_shell_because_the_lock_has_no_torch_wheel_for_it() -> None:
    assert [u for u in locked_torch_wheels() if "macosx" in u and u.endswith("_arm64.whl")]
    assert not [u for u in locked_torch_wheels() if "macosx" in u and "x86_64" in u]
    intel = shells("x86_64-darwin")
    assert "torch" not in intel["default"]["venv"]
    assert intel["default"]["venv"] == intel["backend"]["venv"]
    assert "torch has no wheel for x86_64 macOS" in intel["default"]["shellHook"]
    assert "torch has no wheel" not in shells("aarch64-darwin")["default"]["shellHook"]


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-darwin"])
def test_dev_shells_are_built_on_the_stock_cached_python313_without_stripping(system: str) -> None:
    """mkDevPythonSets, and the shells nix/system.nix builds from it (the harness calls system.nix
    itself for them); the images' sets stay on the trimmed interpreter and strip (test_nix_eval.py)."""
    result = nix_eval(f"with {harness(nix_inputs(), system)}; {{ inherit devPython imagesStrip shellSets; }}")
    expected = {"stock": True, "overridden": False, "strips": False}
    assert result["devPython"] == {variant: expected for variant in ("none", "cpu", "cuda")}
    linux = system.endswith("-linux")  # nix/strip.nix strips on Linux only
    assert result["imagesStrip"] == {"none": linux, "cpu": linux, "cuda": linux}
    assert result["shellSets"] == {
        name: {"trimmedPython": False, "stripped": False} for name in ("default", "backend", "editable")
    }


def test_the_editable_ktrdr_is_built_from_its_metadata_only() -> None:
    editable = evaluated("x86_64-linux")["editable"]
    assert editable["src"] is True
    assert editable["srcFiles"] == ["pyproject.toml", "README.md", "ktrdr", "ktrdr/__init__.py"]


# --- the shell hook, run by bash ------------------------------------------------------------------


def run_hook(cwd: Path, ceiling: Path) -> subprocess.CompletedProcess[str]:
    hook = shells("x86_64-linux")["default"]["shellHook"]
    script = hook + '\nprintf "%s\\n" "$REPO_ROOT"\n'
    env = {"PATH": "/usr/bin:/bin", "GIT_CEILING_DIRECTORIES": str(ceiling), "PYTHONPATH": "/somewhere"}
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


@pytest.fixture
def bash_and_git() -> None:
    if not (shutil.which("bash") and shutil.which("git")):
        pytest.skip("needs bash and git")


@pytest.mark.usefixtures("bash_and_git")
def test_repo_root_is_the_checkout_or_else_the_working_directory(tmp_path: Path) -> None:
    tarball = tmp_path / "ktrdr-0.1.0"
    (tarball / "ktrdr").mkdir(parents=True)
    proc = run_hook(tarball, tmp_path)
    assert proc.stdout.strip() == str(tarball)
    assert proc.stderr == ""

    checkout = tmp_path / "checkout"
    (checkout / "ktrdr" / "cli").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(checkout)], check=True)
    assert run_hook(checkout / "ktrdr" / "cli", tmp_path).stdout.strip() == str(checkout)


@pytest.mark.usefixtures("bash_and_git")
def test_the_hook_warns_about_a_venv_uv_would_use(tmp_path: Path) -> None:
    (tmp_path / "src" / ".venv").mkdir(parents=True)
    proc = run_hook(tmp_path / "src", tmp_path)
    assert f"{tmp_path / 'src'}/.venv exists" in proc.stderr
    assert "'uv run' would use .venv" in proc.stderr
