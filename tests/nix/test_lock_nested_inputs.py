"""Tier 2 (where KTRDR_NIX_INPUTS is set): the nested inputs our flake.lock locks on an input's behalf
are the ones that input's own flake.lock pins, taken from the input's snapshot at the locked revision.

nix2container keeps its own nixpkgs (flake.nix says why); the node our lock holds for it must be the
exact node of nix2container's flake.lock, narHash included, or Nix would build its skopeo patch and
Go vendorHash against a nixpkgs they were never tested with.
"""

from __future__ import annotations

import json

import pytest

from .conftest import REPO, nix_inputs
from .test_nix_static import OWN_NESTED_INPUTS

pytestmark = pytest.mark.nix


def nested_node(lock: dict, name: str, sub: str) -> dict:
    nodes = lock["nodes"]
    own = nodes[nodes[lock["root"]]["inputs"][name]]["inputs"][sub]
    return nodes[own]


@pytest.mark.parametrize(
    ("name", "sub"), [(name, sub) for name, subs in OWN_NESTED_INPUTS.items() for sub in subs]
)
def test_nested_input_is_the_one_the_inputs_own_lock_pins(name: str, sub: str) -> None:
    snapshot_lock = nix_inputs() / name / "flake.lock"
    if not snapshot_lock.is_file():
        pytest.skip(f"{snapshot_lock} is not in the snapshot")
    theirs = json.loads(snapshot_lock.read_text())
    ours = json.loads((REPO / "flake.lock").read_text())
    their_node = theirs["nodes"][theirs["nodes"][theirs["root"]]["inputs"][sub]]
    assert nested_node(ours, name, sub) == {k: their_node[k] for k in ("locked", "original")}
