"""deploy/k8s-single-node: the kustomize overlay for one node, whose data volume is ReadWriteOnce (what
every default storage class offers). No kustomize here: each of its strategic-merge patches is
applied to the base resource it targets the way kustomize does for these fields (maps merged, lists
of scalars replaced) and the result is validated against the Kubernetes schemas, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY

kubernetes_validate = pytest.importorskip("kubernetes_validate")

OVERLAY = DEPLOY / "k8s-single-node"
BASE = DEPLOY / "k8s"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kustomization() -> dict:
    return load(OVERLAY / "kustomization.yaml")


def base_documents() -> dict[tuple[str, str], dict]:
    docs = {}
    for name in load(BASE / "kustomization.yaml")["resources"]:
        for doc in yaml.safe_load_all((BASE / name).read_text()):
            if doc:
                docs[(doc["kind"], doc["metadata"]["name"])] = doc
    return docs


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge for maps and lists of scalars: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in patch.items()}}
    return patch


def patched() -> dict[tuple[str, str], dict]:
    docs = base_documents()
    for entry in kustomization()["patches"]:
        patch = load(OVERLAY / entry["path"])
        key = (patch["kind"], patch["metadata"]["name"])
        assert key in docs, f"{entry['path']} patches {key}, which the base does not have"
        docs[key] = merge(docs[key], patch)
    return docs


def test_the_overlay_builds_on_the_base_from_beside_it() -> None:
    (resource,) = kustomization()["resources"]
    assert (OVERLAY / resource).resolve() == BASE.resolve()
    # kustomize refuses a resource folder that contains the overlay ("cycle detected")
    assert BASE.resolve() not in OVERLAY.resolve().parents


def test_the_data_volume_is_read_write_once_and_otherwise_the_base() -> None:
    base = base_documents()[("PersistentVolumeClaim", "ktrdr-data")]
    claim = patched()[("PersistentVolumeClaim", "ktrdr-data")]
    assert base["spec"]["accessModes"] == ["ReadWriteMany"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"] == base["spec"]["resources"]
    assert {k: v for k, v in claim.items() if k != "spec"} == {k: v for k, v in base.items() if k != "spec"}


def test_every_patched_resource_is_valid() -> None:
    version = kubernetes_validate.latest_version()
    for entry in kustomization()["patches"]:
        patch = load(OVERLAY / entry["path"])
        kubernetes_validate.validate(
            patched()[(patch["kind"], patch["metadata"]["name"])], version, strict=True
        )


def test_a_broken_patch_result_is_rejected() -> None:
    claim = merge(
        base_documents()[("PersistentVolumeClaim", "ktrdr-data")], {"spec": {"accessModes": "ReadWriteOnce"}}
    )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(claim, kubernetes_validate.latest_version(), strict=True)
