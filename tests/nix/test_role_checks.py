"""Tier 2 (where KTRDR_NIX_INPUTS is set): each role's checks (nix/checks.nix, `<role>-checks`) import
every extension module of the role's stripped wheels in the role's environment.

The command the check runs is taken from nix/checks.nix evaluated against the mock (harness.nix) and
run here for real: the mock's store paths are replaced by this machine's installed copies of the same
packages (each stripped wheel's files, from its RECORD, in a tree of its own that comes first on the
environment's path), so the script, its arguments and what it finds under them are the check's own.
"""

from __future__ import annotations

import importlib.metadata
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from .conftest import REPO, harness, nix_eval, nix_inputs

pytestmark = pytest.mark.nix

SYSTEM = "x86_64-linux"
MOCK_WHEEL = re.compile(r"/nix/store/0{32}-(?P<name>.+)-(?P<version>[^-]+)/lib/python3\.13/site-packages")


@cache
def evaluated() -> dict:
    return nix_eval(
        f"with {harness(nix_inputs(), SYSTEM)}; {{ inherit extensionImports; "
        "strip = builtins.mapAttrs (_: image: image.strip) images; }"
    )


def stripped_wheels(role: str) -> set[str]:
    """The role's packages nix/strip.nix turns the strip hook on for (test_nix_eval.py checks which)."""
    strip = evaluated()["strip"][role]
    return {
        name for name, attrs in strip.items() if attrs["format"] == "wheel" and attrs["dontStrip"] is False
    }


def installed_tree(name: str, root: Path) -> Path:
    """The installed files of distribution ``name`` (this environment's copy), linked into a
    site-packages of their own, as the wheel's store path holds them."""
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed here")
    site = root / name / "lib" / "python3.13" / "site-packages"
    for file in dist.files or []:
        if file.parts[0] == ".." or file.suffix == ".pyc":
            continue
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(Path(str(dist.locate_file(file))).resolve())
    return site


def run_the_check(role: str, root: Path, break_module: str | None = None) -> subprocess.CompletedProcess[str]:
    """The role check's import command, with the mock's paths replaced by real ones."""
    check = evaluated()["extensionImports"][role]
    assert check["inEnvFileChecks"], "the role's checks run it on its environment's files"
    python, script, *args = shlex.split(check["command"])
    assert python.endswith(f"-ktrdr-{role}-env/bin/python")
    assert script.endswith("-import_extensions.py")
    assert args[0::2] == ["--site"] * (len(args) // 2)
    sites = {}
    for arg in args[1::2]:
        match = MOCK_WHEEL.fullmatch(arg)
        assert match, arg
        sites[match["name"]] = installed_tree(match["name"], root)
    assert set(sites) == stripped_wheels(role)
    if break_module:
        # A module the strip or patchelf left unloadable (here: its ELF header overwritten).
        (victim,) = [p for site in sites.values() for p in site.rglob(f"{break_module}.cpython-313-*.so")]
        data = victim.read_bytes()
        victim.unlink()
        victim.write_bytes(bytes(64) + data[64:])
    # The role's environment: this interpreter, with the stripped wheels' trees first on its path.
    env_python = root / "env" / "bin" / "python"
    env_python.parent.mkdir(parents=True)
    env_python.write_text(
        f'#!/bin/sh\nexport PYTHONPATH={":".join(map(str, sites.values()))}\nexec {sys.executable} "$@"\n'
    )
    env_python.chmod(0o755)
    argv = [str(env_python), str(REPO / "tools" / "import_extensions.py")]
    argv += [a for site in sites.values() for a in ("--site", str(site))]
    return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("role", ["backend", "worker-cpu"])
def test_the_role_check_imports_every_extension_module_of_its_stripped_wheels(
    role: str, tmp_path: Path
) -> None:
    result = run_the_check(role, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    imported, total = map(int, re.findall(r"^(\d+) of (\d+) extension modules", result.stdout, re.M)[0])
    assert imported == total > 10, result.stdout


def test_the_role_check_fails_naming_a_module_that_does_not_load(tmp_path: Path) -> None:
    result = run_the_check("backend", tmp_path, break_module="protocol")
    assert result.returncode == 1
    assert "asyncpg.protocol.protocol:" in result.stdout


def test_the_import_script_fails_when_the_sites_hold_no_extension_module(tmp_path: Path) -> None:
    (tmp_path / "pure").mkdir()
    argv = [sys.executable, str(REPO / "tools" / "import_extensions.py"), "--site", str(tmp_path / "pure")]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 1 and "no extension module" in result.stdout
