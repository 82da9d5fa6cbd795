"""Publish each image whose build legs all passed: merge its architectures into one multi-arch index
under its tags, sign it with cosign, and say in the job summary what was published, skipped and why.

Reads the plan of the images workflow (the legs it built and the legs it left out, with the reason)
and the ``meta.json`` each passing leg uploaded (image, arch, repository, pushed digest). Per image:

* it is published when every planned leg of it uploaded its artifact (a failed leg skips that image
  only, not the others), under ``sha-<short>`` (``--sha-tag``);
* the floating tags (``--floating``: ``latest``, the version) move only when every gate
  (``--gate NAME=RESULT``: the reproducibility check, the lock's audit) is ``success``;
* ``latest`` moves only forward: to a commit that descends from the one ``latest`` points at now (the
  index annotation ``org.opencontainers.image.revision`` this script writes), so a tag pushed on an
  older commit, or a re-run of an old workflow, never moves it back.

Each index is signed keylessly (``cosign sign --recursive``: the index and each platform manifest).

Usage: publish_index.py ARTIFACTS_DIR --plan JSON --commit SHA --sha-tag TAG [--floating TAG ...]
       [--gate NAME=RESULT ...] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from image_roles import ImageRole, load_roles

REVISION = "org.opencontainers.image.revision"


@dataclass
class Decision:
    """What happens to one image."""

    image: str
    repository: str | None = None
    tags: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the image is not published at all
    notes: list[str] = field(default_factory=list)

    def command(self, commit: str) -> list[str]:
        """The ``docker buildx imagetools create`` that publishes this image."""
        cmd = ["docker", "buildx", "imagetools", "create", "--annotation", f"index:{REVISION}={commit}"]
        for tag in self.tags:
            cmd += ["--tag", f"{self.repository}:{tag}"]
        return cmd + self.sources


def collect(artifacts: Path) -> dict[str, dict[str, dict[str, str]]]:
    """image -> arch -> that leg's meta.json."""
    legs: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    for meta_file in sorted(artifacts.glob("*/meta.json")):
        meta = json.loads(meta_file.read_text())
        legs[meta["image"]][meta["arch"]] = meta
    return legs


def decide(
    roles: dict[str, ImageRole],
    plan: dict[str, list[dict[str, str]]],
    built: dict[str, dict[str, dict[str, str]]],
    *,
    sha_tag: str,
    floating: list[str],
    gates: dict[str, str],
    latest_revision: Callable[[str], str | None],
    moves_forward: Callable[[str, str], bool],
    commit: str,
) -> list[Decision]:
    """Per image of the role table: its tags and sources, or why it is skipped.

    ``latest_revision(repository)`` is the commit ``latest`` points at (None when there is no
    ``latest`` yet, "" when it records none); ``moves_forward(old, new)`` whether ``new`` descends
    from (or is) ``old``.
    """
    failed_gates = sorted(f"{name} ({result})" for name, result in gates.items() if result != "success")
    decisions = []
    for name in roles:
        decision = Decision(image=name)
        decisions.append(decision)
        planned = [leg["arch"] for leg in plan["legs"] if leg["image"] == name]
        left_out = [leg for leg in plan.get("skipped", []) if leg["image"] == name]
        decision.notes += [f"{leg['arch']} not built: {leg['reason']}" for leg in left_out]
        have = built.get(name, {})
        missing = [arch for arch in planned if arch not in have]
        if not planned:
            decision.skipped = "no leg of it was planned"
            continue
        if missing:
            decision.skipped = f"the {', '.join(missing)} leg did not pass (no artifact)"
            continue
        repositories = {have[arch]["repository"] for arch in planned}
        if len(repositories) != 1:
            decision.skipped = f"its legs pushed to different repositories {sorted(repositories)}"
            continue
        decision.repository = repositories.pop()
        decision.sources = [f"{decision.repository}@{have[arch]['digest']}" for arch in planned]
        decision.tags = [sha_tag]
        if floating and failed_gates:
            decision.notes.append(f"{', '.join(floating)} not moved: {', '.join(failed_gates)} did not pass")
            continue
        for tag in floating:
            if tag != "latest":
                decision.tags.append(tag)
                continue
            current = latest_revision(decision.repository)
            if current is None or (current and moves_forward(current, commit)):
                decision.tags.append(tag)
            elif not current:
                decision.notes.append("latest not moved: the latest there records no revision")
            else:
                decision.notes.append(
                    f"latest not moved: it is at {current[:12]}; this commit does not descend from it"
                )
    return decisions


def latest_revision(repository: str) -> str | None:
    """The commit the repository's ``latest`` index records: None when there is no ``latest`` yet,
    "" when it records none."""
    proc = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", "--raw", f"{repository}:latest"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        if "not found" in proc.stderr.lower():
            return None
        raise SystemExit(f"cannot read {repository}:latest: {proc.stderr.strip()}")
    annotations = json.loads(proc.stdout).get("annotations") or {}
    # A latest this script did not write (no revision) is never overwritten by it: say so, do not guess.
    return str(annotations.get(REVISION, ""))


def moves_forward(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` or descends from it (needs the history: checkout fetch-depth 0)."""
    proc = subprocess.run(["git", "merge-base", "--is-ancestor", old, new], capture_output=True, check=False)
    return proc.returncode == 0


def index_digest(ref: str) -> str:
    out = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)["digest"])


def summary(decisions: list[Decision], published: dict[str, str]) -> str:
    lines = []
    for d in decisions:
        if d.skipped:
            lines.append(f"- **ktrdr-{d.image}: not published**, {d.skipped}")
        else:
            tags = ", ".join(f"`{t}`" for t in d.tags)
            lines.append(
                f"- ktrdr-{d.image}: `{d.repository}@{published.get(d.image, '?')}` ({tags}), signed"
            )
        lines += [f"  - {note}" for note in d.notes]
    return "\n".join(lines) + "\n"


def parse_gates(values: list[str]) -> dict[str, str]:
    gates = {}
    for value in values:
        name, sep, result = value.partition("=")
        if not sep or not name:
            raise SystemExit(f"--gate {value!r}: expected NAME=RESULT")
        gates[name] = result
    return gates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts", type=Path)
    parser.add_argument(
        "--plan", required=True, help='{"legs": [...], "skipped": [...]} (image_roles.py plan)'
    )
    parser.add_argument("--commit", required=True)
    parser.add_argument("--sha-tag", required=True)
    parser.add_argument("--floating", action="append", default=[], help="latest, the version")
    parser.add_argument("--gate", action="append", default=[], help="NAME=RESULT, e.g. audit=success")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, publish nothing")
    args = parser.parse_args(argv)
    decisions = decide(
        load_roles(),
        json.loads(args.plan),
        collect(args.artifacts),
        sha_tag=args.sha_tag,
        floating=args.floating,
        gates=parse_gates(args.gate),
        latest_revision=latest_revision,
        moves_forward=moves_forward,
        commit=args.commit,
    )
    published: dict[str, str] = {}
    for d in decisions:
        if d.skipped:
            continue
        if args.dry_run:
            print(" ".join(d.command(args.commit)))
            continue
        subprocess.run(d.command(args.commit), check=True)
        published[d.image] = index_digest(f"{d.repository}:{d.tags[0]}")
        subprocess.run(
            ["cosign", "sign", "--yes", "--recursive", f"{d.repository}@{published[d.image]}"], check=True
        )
    print(summary(decisions, published), end="")
    # The run fails when an image could not be published; the others are published all the same.
    return 1 if any(d.skipped for d in decisions) else 0


if __name__ == "__main__":
    raise SystemExit(main())
