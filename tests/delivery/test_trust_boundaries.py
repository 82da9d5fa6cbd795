"""The networks and secrets of the trust model (docs/deploy.md), as the deploy files write them.

Compose: only the backend publishes a port; PostgreSQL and the backend alone share `db`; the
workers and the backend alone share `workers`; both are internal; every ktrdr service reads the
token from ktrdr.env and runs in production (so it refuses to start without one). Kubernetes:
the NetworkPolicies, evaluated here against the pods' own labels, let only the backend reach a
worker or PostgreSQL, let a worker reach only the backend and DNS, and deny everything else in
the namespace; every pod can take the previous token during a rotation.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, load_yaml

K8S = DEPLOY / "k8s"
WORKER_SERVICES = ["backtest-worker-1", "backtest-worker-2", "training-worker", "training-worker-cpu"]


# --- compose ---------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "compose.yaml")


def members(document: dict[str, Any], network: str) -> set[str]:
    return {name for name, service in document["services"].items() if network in service.get("networks", [])}


def test_compose_fences_the_database_and_the_workers() -> None:
    document = compose()
    networks = document["networks"]
    assert members(document, "db") == {"backend", "postgres"}
    assert members(document, "workers") == {"backend", *WORKER_SERVICES}
    assert networks["db"]["internal"] is True and networks["workers"]["internal"] is True
    for name in WORKER_SERVICES:
        assert document["services"][name]["networks"] == ["workers"], name
    assert [n for n, s in document["services"].items() if "ports" in s] == ["backend"]


def test_compose_gives_every_ktrdr_service_the_token_and_production() -> None:
    services = compose()["services"]
    for name in ["backend", *WORKER_SERVICES]:
        assert {"path": "ktrdr.env", "required": True} in services[name]["env_file"], name
        assert services[name]["environment"]["KTRDR_ENV"] == "production", name
    example = (DEPLOY / "ktrdr.env.example").read_text().splitlines()
    assert {"KTRDR_API_TOKEN=", "KTRDR_API_TOKEN_PREVIOUS="} <= set(example)


def test_the_compose_fence_check_notices_a_worker_on_another_network() -> None:
    document = compose()
    document["services"]["backtest-worker-1"]["networks"] = ["workers", "edge"]
    document["services"]["postgres"]["networks"] = ["db", "workers"]
    assert members(document, "workers") != {"backend", *WORKER_SERVICES}


# --- Kubernetes ---------------------------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    files = load_yaml(K8S / "kustomization.yaml")["resources"]
    return [d for f in files for d in yaml.safe_load_all((K8S / f).read_text()) if d]


def pod_labels() -> dict[str, dict[str, str]]:
    """Each Deployment's pod labels, plus the labels a PostgreSQL in the namespace carries."""
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in k8s_documents()
        if d["kind"] == "Deployment"
    }
    pods["postgresql"] = {"app.kubernetes.io/name": "postgresql"}
    pods["some-other-pod"] = {"app.kubernetes.io/name": "debug-shell"}
    return pods


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and the In / NotIn / Exists expressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def allowed(policies: list[dict[str, Any]], direction: str) -> dict[str, set[str] | None]:
    """Pod -> the pods it may receive from (``ingress``) or send to (``egress``), with "outside the
    namespace" for peers chosen by namespace or address; None where no rule limits that direction."""
    pods = pod_labels()
    policy_type = "Ingress" if direction == "ingress" else "Egress"
    result: dict[str, set[str] | None] = {}
    for pod, labels in pods.items():
        governing = [
            p
            for p in policies
            if policy_type in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
        ]
        result[pod] = peers_of(governing, direction, pods) if governing else None
    return result


def peers_of(
    governing: list[dict[str, Any]], direction: str, pods: dict[str, dict[str, str]]
) -> set[str] | None:
    peers_key = "from" if direction == "ingress" else "to"
    peers: set[str] = set()
    for policy in governing:
        for rule in policy["spec"].get(direction, []):
            if peers_key not in rule:
                return None  # a rule naming no peers admits everyone (on its ports)
            for peer in rule[peers_key]:
                if "namespaceSelector" in peer or "ipBlock" in peer:
                    peers.add("outside the namespace")
                else:
                    peers |= {name for name, labels in pods.items() if selects(peer["podSelector"], labels)}
    return peers


def network_policies() -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == "NetworkPolicy"]


def test_only_the_backend_reaches_the_workers_and_postgresql() -> None:
    ingress = allowed(network_policies(), "ingress")
    assert ingress["ktrdr-backtest-worker"] == {"ktrdr-backend"}
    assert ingress["ktrdr-training-worker"] == {"ktrdr-backend"}
    assert ingress["postgresql"] == {"ktrdr-backend"}
    assert ingress["some-other-pod"] == set()  # denied by default
    assert ingress["ktrdr-backend"] is None  # the API itself answers its clients


def test_workers_reach_only_the_backend_and_dns() -> None:
    egress = allowed(network_policies(), "egress")
    for worker in ("ktrdr-backtest-worker", "ktrdr-training-worker"):
        assert egress[worker] == {"ktrdr-backend", "outside the namespace"}
    (workers,) = [p for p in network_policies() if p["metadata"]["name"] == "ktrdr-workers"]
    outside = [
        (peer, rule["ports"])
        for rule in workers["spec"]["egress"]
        for peer in rule["to"]
        if "namespaceSelector" in peer
    ]
    assert outside == [
        (
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            },
            [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
        )
    ]


def test_the_policy_check_notices_a_worker_opened_to_everyone() -> None:
    policies = yaml.safe_load(yaml.safe_dump(network_policies()))
    (workers,) = [p for p in policies if p["metadata"]["name"] == "ktrdr-workers"]
    workers["spec"]["ingress"].append({"ports": [{"port": "http"}]})
    assert allowed(policies, "ingress")["ktrdr-backtest-worker"] is None
    loose = [p for p in policies if p["metadata"]["name"] != "ktrdr-default-deny-ingress"]
    assert allowed(loose, "ingress")["some-other-pod"] is None


@pytest.mark.parametrize("name", ["ktrdr-backend", "ktrdr-backtest-worker", "ktrdr-training-worker"])
def test_every_pod_can_take_the_previous_token_while_rotating(name: str) -> None:
    (deployment,) = [
        d for d in k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["KTRDR_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "ktrdr", "key": "KTRDR_API_TOKEN"}
    previous = env["KTRDR_API_TOKEN_PREVIOUS"]["valueFrom"]["secretKeyRef"]
    assert previous == {"name": "ktrdr", "key": "KTRDR_API_TOKEN_PREVIOUS", "optional": True}
    assert "KTRDR_API_TOKEN_PREVIOUS=" in (K8S / "secrets.env.example").read_text().splitlines()
