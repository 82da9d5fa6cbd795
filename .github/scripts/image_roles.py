"""The image role table ([tool.ktrdr.images.*] in pyproject.toml) as the delivery scripts see it.

The workflows' matrix, the SBOMs, the merge of per-architecture tags and the job summary all take
each image's name, port, extras, torch variant and platforms from here, so nothing about an image
is written twice. Standard library only: these scripts run on a bare CI runner's python3.
"""

from __future__ import annotations

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
        )
    return roles


def build_matrix(roles: dict[str, ImageRole]) -> list[dict[str, str]]:
    """The image x architecture legs the images workflow must build, one dict per leg."""
    return [
        {"image": role.name, "arch": arch, "runner": RUNNER[arch]}
        for role in roles.values()
        for arch in role.arches
    ]
