"""deploy/k8s: every manifest valid against the Kubernetes schemas (offline, kubernetes-validate),
kustomize-ready, and the properties a cluster relies on (restricted security contexts, `ktrdr
healthcheck` probes, ports from the role table, the GPU only for the training worker, secrets from
a Secret)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from image_roles import load_roles

from .conftest import DEPLOY

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = DEPLOY / "k8s"
ROLES = load_roles()
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def all_documents() -> list[dict]:
    return [d for f in KUSTOMIZATION["resources"] for d in documents(K8S / f)]


def deployments() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in all_documents() if d["kind"] == "Deployment"}


def role_of(container: dict) -> str:
    return container["image"].removeprefix("ktrdr-")


def test_every_manifest_passes_strict_schema_validation() -> None:
    version = kubernetes_validate.latest_version()
    docs = all_documents()
    assert {d["kind"] for d in docs} == {
        "Namespace",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "NetworkPolicy",
    }
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_rejects_a_broken_deployment() -> None:
    doc = deployments()["ktrdr-backend"]
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest_and_maps_every_image() -> None:
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == manifests
    images = {c["image"] for d in deployments().values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {f"ktrdr-{name}" for name in ROLES}
    assert {i["name"] for i in KUSTOMIZATION["images"]} == images
    for image in KUSTOMIZATION["images"]:
        assert image["newName"].startswith("ghcr.io/") and image["newName"].endswith("/" + image["name"])
    (generated,) = KUSTOMIZATION["secretGenerator"]
    assert generated == {"name": "ktrdr", "envs": ["secrets.env"]}


def test_the_three_roles_have_deployments_and_services() -> None:
    docs = all_documents()
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert set(services) == set(deployments())
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        port = ROLES[role_of(container)].port
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert services[name]["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
        assert services[name]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert deployments()["ktrdr-backtest-worker"]["spec"]["replicas"] == 2


@pytest.mark.parametrize("name", ["ktrdr-backend", "ktrdr-backtest-worker", "ktrdr-training-worker"])
def test_pods_run_restricted(name: str) -> None:
    pod = deployments()[name]["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["exec"]["command"] == ["ktrdr", "healthcheck"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/app/data"]]["persistentVolumeClaim"] == {"claimName": "ktrdr-data"}


def env_of(name: str) -> dict[str, dict]:
    (container,) = deployments()[name]["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_the_db_url_and_the_token_come_from_the_secret() -> None:
    keys = {
        line.split("=", 1)[0]
        for line in (K8S / "secrets.env.example").read_text().splitlines()
        if "=" in line
    }
    for name in deployments():
        env = env_of(name)
        for var in ("KTRDR_API_TOKEN", "KTRDR_DB_URL"):
            if var in env:
                assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "ktrdr", "key": var}
                assert var in keys
        assert env["KTRDR_ENV"]["value"] == "production"
    assert "KTRDR_DB_URL" in env_of("ktrdr-backend")
    assert "KTRDR_API_TOKEN" in env_of("ktrdr-backtest-worker")


@pytest.mark.parametrize("name", ["ktrdr-backtest-worker", "ktrdr-training-worker"])
def test_workers_register_with_their_own_pod_address(name: str) -> None:
    env = env_of(name)
    (container,) = deployments()[name]["spec"]["template"]["spec"]["containers"]
    port = ROLES[role_of(container)].port
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["KTRDR_WORKER_PUBLIC_BASE_URL"]["value"] == f"http://$(POD_IP):{port}"
    assert env["KTRDR_API_CLIENT_BASE_URL"]["value"] == f"http://ktrdr-backend:{ROLES['backend'].port}/api/v1"
    names = list(env)
    assert names.index("POD_IP") < names.index("KTRDR_WORKER_PUBLIC_BASE_URL"), (
        "$(POD_IP) must be defined first"
    )


def test_only_the_training_worker_requests_a_gpu() -> None:
    wanting = {}
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        resources = container["resources"]
        if "nvidia.com/gpu" in resources.get("limits", {}):
            wanting[name] = (resources["requests"]["nvidia.com/gpu"], resources["limits"]["nvidia.com/gpu"])
    assert wanting == {"ktrdr-training-worker": (1, 1)}
    (container,) = deployments()["ktrdr-training-worker"]["spec"]["template"]["spec"]["containers"]
    assert ROLES[role_of(container)].torch == "cuda"


TORCH_ROLES_STARTUP_S = 180  # numpy, pandas and torch are imported before a worker answers


@pytest.mark.parametrize("name", ["ktrdr-backend", "ktrdr-backtest-worker", "ktrdr-training-worker"])
def test_probes_allow_a_cold_python_start(name: str) -> None:
    """Each probe starts a Python process (`ktrdr healthcheck`), so the 1 s default timeout is too short."""
    (container,) = deployments()[name]["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["timeoutSeconds"] >= 10, (name, probe)
    startup = container["startupProbe"]
    window = startup["periodSeconds"] * startup["failureThreshold"]
    assert window >= (TORCH_ROLES_STARTUP_S if ROLES[role_of(container)].torch != "none" else 120), window
