"""tools/replay_fixup.py replays the build's fixup on one installed wheel in the build's own order:
patchelf's setup hook (``patchelf --shrink-rpath``), then the strip hook, both fixupOutputHooks,
then autoPatchelf (postFixup); and its shrink step does what patchelf's hook does."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from tools.replay_fixup import Derivation, fixup, read_elf, shrink_rpaths

pytestmark = pytest.mark.nix

ELF = shutil.which("true")


@pytest.fixture
def drv(tmp_path: Path) -> Derivation:
    """An installed wheel that nix/strip.nix strips, holding one ELF file."""
    if not (ELF and shutil.which("readelf")):
        pytest.skip("needs readelf and an ELF executable")
    with open(ELF, "rb") as fh:
        if fh.read(4) != b"\x7fELF":
            pytest.skip(f"{ELF} is not an ELF file")
    out = tmp_path / "store" / f"{'0' * 32}-python3.13-pyyaml-6.0"
    derivation = Derivation("pyyaml", "6.0", out)
    derivation.site.mkdir(parents=True)
    shutil.copy(ELF, derivation.site / "_yaml.cpython-313-x86_64-linux-gnu.so")
    return derivation


def stand_in(tmp_path: Path, tool: str, log: Path) -> str:
    """A ``tool`` that records how it was called, and changes nothing."""
    path = tmp_path / "bin" / tool
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
    path.chmod(0o755)
    return str(path)


def test_each_elf_file_is_shrunk_then_stripped_then_patched(drv: Derivation, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    libc = tmp_path / "libc"
    libc.mkdir()
    args = argparse.Namespace(
        patchelf=stand_in(tmp_path, "patchelf", log),
        strip=stand_in(tmp_path, "strip", log),
        no_strip=False,
        libc_dir=libc,
        interpreter=libc / "ld.so",
    )
    drv.append_runpaths.append("$ORIGIN")
    report: dict = {"shrunk_rpaths": {}, "strip_complaints": {}, "stripped_mb": {}, "missing": {}}
    machine = read_elf(drv.site / "_yaml.cpython-313-x86_64-linux-gnu.so").machine  # type: ignore[union-attr]
    fixup(drv, args, machine, report)
    calls = [line.split()[:2] for line in log.read_text().splitlines() if "_yaml" in line]
    steps = [call[1] if call[0] == "patchelf" else call[0] for call in calls]
    assert steps[0] == "--shrink-rpath", steps
    assert steps.index("strip") < steps.index("--set-rpath"), steps


def test_shrink_rpath_drops_only_absolute_entries_without_a_needed_library(drv: Derivation) -> None:
    if not shutil.which("patchelf"):
        pytest.skip("patchelf is not installed")
    foreign, own = drv.site / "_yaml.cpython-313-x86_64-linux-gnu.so", drv.site / "own.so"
    shutil.copy(foreign, own)
    subprocess.run(["patchelf", "--set-rpath", "/nonexistent/lib:$ORIGIN/../libs", str(foreign)], check=True)
    subprocess.run(["patchelf", "--set-rpath", "$ORIGIN/../libs", str(own)], check=True)
    untouched = own.read_bytes()
    assert shrink_rpaths("patchelf", drv.out) == [
        f"{foreign.relative_to(drv.out)}: /nonexistent/lib:$ORIGIN/../libs -> $ORIGIN/../libs"
    ]
    assert read_elf(foreign).rpath == ["$ORIGIN/../libs"]  # type: ignore[union-attr]
    assert own.read_bytes() == untouched, "a file it does not change is not rewritten"
