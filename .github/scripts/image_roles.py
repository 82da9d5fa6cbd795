"""The image role table ([tool.ktrdr.images.*] in pyproject.toml) as the delivery scripts see it.

The workflows' matrix, the SBOMs, the merge of per-architecture tags and the job summary all take
each image's name, port, extras, torch variant, platforms and size budget from here, so nothing about
an image is written twice. Standard library only: these scripts run on a bare CI runner's python3.

``image_roles.py plan --arm64 SWITCH --private BOOL`` prints the images workflow's build legs
(``legs=<json>``) and the legs it leaves out with the reason (``skipped=<json>``), for
$GITHUB_OUTPUT. GitHub's arm64 runners exist for public repositories only, so the arm64 legs follow
the repository variable ARM64_LEGS: ``on``, ``off``, or ``auto`` / unset (on when the repository
is public).
"""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

# Nix system -> OCI architecture (what nix2container writes into the image and the registry uses).
OCI_ARCH = {"x86_64-linux": "amd64", "aarch64-linux": "arm64"}
# OCI architecture -> the GitHub-hosted runner that builds it natively.
RUNNER = {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ImageRole:
    """One row of the role table."""

    name: str
    serve: str
    port: int
    health: str
    extras: tuple[str, ...]
    torch: str
    platforms: tuple[str, ...]
    # The whole image, uncompressed: the images workflow fails when a built image is larger.
    image_budget_mb: int
    # Its top layer (ktrdr and the venv, what an app-only release re-pushes), uncompressed: likewise.
    app_budget_mb: int
    # The lock's wheel bytes for the role (compressed downloads), where set: the size-budget test.
    wheels_budget_mb: int | None

    @property
    def arches(self) -> tuple[str, ...]:
        return tuple(OCI_ARCH[p] for p in self.platforms)


def load_roles(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict[str, ImageRole]:
    """Every image of the role table, by name (``backend``, ``worker-cpu``, ``worker-gpu``)."""
    table = tomllib.loads(pyproject.read_text())["tool"]["ktrdr"]["images"]
    roles = {}
    for name, row in table.items():
        unknown = set(row["platforms"]) - OCI_ARCH.keys()
        if unknown:
            raise ValueError(f"image {name!r}: platforms {sorted(unknown)} have no OCI architecture")
        roles[name] = ImageRole(
            name=name,
            serve=row["serve"],
            port=int(row["port"]),
            health=row["health"],
            extras=tuple(row["extras"]),
            torch=row["torch"],
            platforms=tuple(row["platforms"]),
            image_budget_mb=int(row["image_budget_mb"]),
            app_budget_mb=int(row["app_budget_mb"]),
            wheels_budget_mb=int(row["wheels_budget_mb"]) if "wheels_budget_mb" in row else None,
        )
    return roles


def build_matrix(roles: dict[str, ImageRole]) -> list[dict[str, str]]:
    """The image x architecture legs the images workflow must build, one dict per leg."""
    return [
        {"image": role.name, "arch": arch, "runner": RUNNER[arch]}
        for role in roles.values()
        for arch in role.arches
    ]


ARM64_SWITCH = ("auto", "on", "off")


def plan_legs(
    roles: dict[str, ImageRole], arm64: str, private: bool
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The legs to build and the legs left out (each with its reason), for the ARM64_LEGS switch
    (``auto``/empty, ``on``, ``off``) and the repository's visibility."""
    switch = arm64.strip().lower() or "auto"
    if switch not in ARM64_SWITCH:
        raise SystemExit(f"ARM64_LEGS={arm64!r}: use one of {', '.join(ARM64_SWITCH)} (or leave it unset)")
    if switch == "off":
        reason = "the repository variable ARM64_LEGS is off"
    elif switch == "auto" and private:
        reason = "GitHub's arm64 runners serve public repositories only (set ARM64_LEGS=on to try anyway)"
    else:
        reason = ""
    legs, skipped = [], []
    for leg in build_matrix(roles):
        if leg["arch"] == "arm64" and reason:
            skipped.append({"image": leg["image"], "arch": leg["arch"], "reason": reason})
        else:
            legs.append(leg)
    return legs, skipped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the images workflow's build legs")
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="print legs=<json> and skipped=<json> for $GITHUB_OUTPUT")
    plan.add_argument("--arm64", default="", help="the ARM64_LEGS switch: auto (default), on, off")
    plan.add_argument("--private", default="false", help="whether the repository is private (true/false)")
    args = parser.parse_args(argv)
    legs, skipped = plan_legs(load_roles(), args.arm64, args.private.strip().lower() == "true")
    print(f"legs={json.dumps(legs)}")
    print(f"skipped={json.dumps(skipped)}")


if __name__ == "__main__":
    main()
