"""Merge the per-architecture images into multi-arch tags, then sign the result with cosign.

Reads the ``meta.json`` each build leg uploaded (image, arch, repository, digest of the pushed
per-architecture manifest), refuses to publish an image unless every architecture the role table
lists was built, creates one image index per image under all requested tags, and signs its digest
keylessly (``--recursive``: the index and each platform manifest).

Usage: publish_index.py ARTIFACTS_DIR TAG [TAG...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import defaultdict
from pathlib import Path

from image_roles import load_roles


def collect(artifacts: Path) -> dict[str, dict[str, dict[str, str]]]:
    """image -> arch -> that leg's meta.json."""
    legs: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for meta_file in sorted(artifacts.glob("*/meta.json")):
        meta = json.loads(meta_file.read_text())
        legs[meta["image"]][meta["arch"]] = meta
    return legs


def plan(legs: dict[str, dict[str, dict[str, str]]], tags: list[str]) -> list[list[str]]:
    """The ``docker buildx imagetools create`` command of each image; fails if an arch is missing."""
    commands = []
    for name, role in load_roles().items():
        built = legs.get(name, {})
        missing = sorted(set(role.arches) - built.keys())
        if missing:
            raise SystemExit(f"ktrdr-{name}: no build for {missing}; not publishing a partial image")
        repository = {meta["repository"] for meta in built.values()}
        if len(repository) != 1:
            raise SystemExit(f"ktrdr-{name}: legs pushed to different repositories {sorted(repository)}")
        repo = repository.pop()
        cmd = ["docker", "buildx", "imagetools", "create"]
        for tag in tags:
            cmd += ["--tag", f"{repo}:{tag}"]
        cmd += [f"{repo}@{built[arch]['digest']}" for arch in role.arches]
        commands.append(cmd)
    return commands


def index_digest(ref: str) -> str:
    out = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)["digest"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path)
    parser.add_argument("tags", nargs="+")
    args = parser.parse_args()
    for cmd in plan(collect(args.artifacts), args.tags):
        subprocess.run(cmd, check=True)
        first_ref = cmd[cmd.index("--tag") + 1]
        repo = first_ref.rsplit(":", 1)[0]
        digest = index_digest(first_ref)
        subprocess.run(["cosign", "sign", "--yes", "--recursive", f"{repo}@{digest}"], check=True)
        tags = ", ".join(f"`{t}`" for t in args.tags)
        print(f"- `{repo}@{digest}` ({tags}), signed")


if __name__ == "__main__":
    main()
