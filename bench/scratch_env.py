"""A scratch environment that is this one without some distributions and without some paths.

``lean_copy(dest, drop, prune)`` makes a virtual environment on this interpreter's base Python
whose site-packages mirrors ours through symlinks, except the files of the distributions in
``drop`` and the paths (site-packages globs, as nix/prune.json writes them) in ``prune``, which are
simply not there. Nothing is copied or installed: it is ready in a second and reads our files, so
what runs in it runs on exactly our packages, minus what the images leave out.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

from bench.sizes import distributions


def _top_level(paths: Iterable[Path], site: Path) -> set[str]:
    return {p.relative_to(site).parts[0] for p in paths}


def lean_copy(dest: Path, drop: Iterable[str], prune: Iterable[str]) -> Path:
    """Build the environment in ``dest``; returns its python."""
    site = Path(sysconfig.get_paths()["purelib"])
    dists = distributions(site)
    drop = set(drop)
    missing = drop - set(dists)
    if missing:
        raise LookupError(f"not installed here, so nothing to leave out: {sorted(missing)}")
    dropped = set().union(*(_top_level(dists[name][1], site) for name in drop))
    kept = set().union(*(_top_level(paths, site) for name, (_, paths) in dists.items() if name not in drop))
    if shared := dropped & kept:
        raise ValueError(f"{sorted(shared)} belong to a dropped and a kept distribution alike")
    pruned = {path.relative_to(site) for pattern in prune for path in site.glob(pattern)}

    subprocess.run(
        [sys._base_executable, "-m", "venv", "--without-pip", str(dest)],  # type: ignore[attr-defined]
        check=True,
    )
    (lean_site,) = (dest / "lib").glob("python*/site-packages")

    def mirror(rel: Path) -> None:
        target = lean_site / rel
        if rel in pruned:
            return
        source = site / rel
        if source.is_dir() and not source.is_symlink() and any(p.is_relative_to(rel) for p in pruned):
            target.mkdir()
            for child in sorted(source.iterdir()):
                mirror(rel / child.name)
        else:
            target.symlink_to(source)

    for entry in sorted(site.iterdir()):
        if entry.name not in dropped:
            mirror(Path(entry.name))
    return dest / "bin" / "python"
