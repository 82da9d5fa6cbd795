"""Rebuild an image where non-determinism can live and let Nix compare each output with the first build.

Rebuilt, with ``nix build --rebuild`` (Nix builds each derivation again from the same inputs and
fails when an output differs from the one in the store):

* every derivation behind the image's runtime closure that was built by us: not fixed-output, not
  content-addressed, not signed by a trusted cache (the Nix binary cache's key): the ktrdr wheel,
  every Python package (installed wheels: bytecode is compiled in the build), the venv, the trimmed
  interpreter, the root skeleton, the fake NSS;
* every layer (nix2container's ``layers.json``: the digests of the layer tars) and the image JSON.

With ``--keep-failed``, Nix keeps a differing rebuild next to the first output as ``<path>.check``;
this script then names the files that differ. It exits non-zero whenever Nix does, and writes what
was rebuilt and what differed as Markdown for $GITHUB_STEP_SUMMARY.

Usage: reproducible.py INSTALLABLE [--summary FILE] [--trusted-key NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TRUSTED_KEYS = ("cache.nixos.org-1",)
NIX = ["nix", "--extra-experimental-features", "nix-command flakes"]
# nix2container's buildLayer and buildImage derivations (default.nix: runCommandLocal names).
LAYER_DRV = re.compile(r"-layers\.json\.drv$")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
MISMATCH = re.compile(
    r"derivation '(?P<drv>[^']+)' may not be deterministic: "
    r"output '(?P<out>[^']+)' differs(?: from '(?P<check>[^']+)')?"
)


@dataclass
class Outcome:
    rebuilt: list[str]
    returncode: int
    mismatches: list[tuple[str, str | None]] = field(default_factory=list)
    differences: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.mismatches


def path_infos(raw: Any) -> dict[str, dict[str, Any]]:
    """``nix path-info --json`` output, in any of its shapes (a list of objects before Nix 2.19, an
    object keyed by path since; invalid paths as null), as path -> info."""
    items = raw.items() if isinstance(raw, dict) else ((entry["path"], entry) for entry in raw)
    infos = {}
    for path, info in items:
        if info is None:
            continue
        full = path if path.startswith("/") else f"/nix/store/{path}"
        infos[full] = info
    return infos


def built_by_us(info: dict[str, Any], trusted_keys: Iterable[str]) -> bool:
    """Whether a store path was built by a job of ours (or copied from our cache), not by a trusted
    builder, and is input-addressed (a fixed-output or content-addressed path is checked by its hash)."""
    if info.get("ca"):
        return False
    deriver = info.get("deriver")
    if not deriver or deriver.endswith("unknown-deriver"):
        return False
    keys = {sig.split(":", 1)[0] for sig in info.get("signatures") or []}
    return not keys & set(trusted_keys)


def rebuild_set(
    closure: dict[str, dict[str, Any]],
    requisites: Iterable[str],
    image_drv: str,
    trusted_keys: Iterable[str] = TRUSTED_KEYS,
) -> list[str]:
    """The derivations to rebuild: those of our runtime-closure paths, the layers and the image."""
    trusted = tuple(trusted_keys)
    drvs = set()
    for path, info in closure.items():
        if built_by_us(info, trusted):
            deriver = info["deriver"]
            drvs.add(deriver if deriver.startswith("/") else f"{os.path.dirname(path)}/{deriver}")
    drvs |= {drv for drv in requisites if LAYER_DRV.search(drv)}
    drvs.add(image_drv)
    return sorted(drvs)


def parse_mismatches(log: str) -> list[tuple[str, str | None]]:
    """(output, kept rebuild or None) for every output Nix reported as different."""
    plain = ANSI.sub("", log)
    return [(m["out"], m["check"]) for m in MISMATCH.finditer(plain)]


def _digest(path: Path) -> str:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return f"symlink -> {os.readlink(path)}"
    if path.is_dir():
        return "directory"
    executable = "x" if info.st_mode & stat.S_IXUSR else "-"
    return f"{executable} {hashlib.sha256(path.read_bytes()).hexdigest()}"


def _entries(root: Path) -> dict[str, str]:
    if root.is_symlink() or not root.is_dir():
        return {".": _digest(root)}
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            entries[str(path.relative_to(root))] = _digest(path)
    return entries


def tree_differences(first: Path, second: Path) -> list[str]:
    """What differs between two outputs: files only one has, content, executable bit, link targets."""
    a, b = _entries(first), _entries(second)
    lines = [f"only in the first build: {p}" for p in sorted(a.keys() - b.keys())]
    lines += [f"only in the rebuild: {p}" for p in sorted(b.keys() - a.keys())]
    lines += [f"differs: {p} ({a[p]} vs {b[p]})" for p in sorted(a.keys() & b.keys()) if a[p] != b[p]]
    return lines


def name_of(store_path: str) -> str:
    """``/nix/store/<hash>-fastapi-0.115.0.drv`` -> ``fastapi-0.115.0``."""
    return os.path.basename(store_path).split("-", 1)[-1].removesuffix(".drv")


def report(installable: str, outcome: Outcome) -> str:
    names = sorted(name_of(d) for d in outcome.rebuilt)
    lines = [
        f"## Reproducibility ({installable})",
        "",
        f"Rebuilt {len(names)} derivations with `nix build --rebuild` and compared each output with "
        "the first build: " + ", ".join(f"`{n}`" for n in names) + ".",
        "",
    ]
    if outcome.ok:
        lines.append("**Every rebuilt output is bit-identical to the first build.**")
    else:
        lines.append(f"**Not reproducible** (nix exited {outcome.returncode}).")
        for out, check in outcome.mismatches:
            lines.append(f"- `{out}` differs" + (f" from `{check}`:" if check else ""))
            lines += [f"  - {d}" for d in outcome.differences.get(out, [])[:20]]
        if not outcome.mismatches:
            lines.append("- Nix failed before comparing (see the step's log).")
    return "\n".join(lines) + "\n"


def run(cmd: list[str]) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def check(installable: str, trusted_keys: Iterable[str]) -> Outcome:
    flake = ["--no-update-lock-file"] if "#" in installable else []
    image = run([*NIX, "build", *flake, "--no-link", "--print-out-paths", installable]).split()[0]
    image_drv = run([*NIX, "path-info", *flake, "--derivation", installable]).split()[0]
    closure = path_infos(json.loads(run([*NIX, "path-info", "--json", "--recursive", image])))
    requisites = run(["nix-store", "--query", "--requisites", image_drv]).split()
    drvs = rebuild_set(closure, requisites, image_drv, trusted_keys)
    cmd = [*NIX, "build", "--rebuild", "--keep-going", "--keep-failed", "--no-link"]
    proc = subprocess.run([*cmd, *(f"{d}^*" for d in drvs)], capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    outcome = Outcome(rebuilt=drvs, returncode=proc.returncode, mismatches=parse_mismatches(proc.stderr))
    for out, kept in outcome.mismatches:
        if kept and Path(kept).exists():
            outcome.differences[out] = tree_differences(Path(out), Path(kept))
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("installable", help="e.g. .#backend-image")
    parser.add_argument("--summary", type=Path, help="append the Markdown report here")
    parser.add_argument("--trusted-key", action="append", dest="trusted_keys", default=None)
    args = parser.parse_args(argv)
    outcome = check(args.installable, args.trusted_keys or TRUSTED_KEYS)
    text = report(args.installable, outcome)
    print(text, end="")
    if args.summary:
        with args.summary.open("a") as summary:
            summary.write(text)
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
