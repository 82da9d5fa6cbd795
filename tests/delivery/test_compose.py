"""deploy/compose.yaml: valid against the Compose specification, and the properties a host relies
on (non-root, read-only roots, `ktrdr healthcheck` probes, ports from the role table, the GPU only
for the training worker, a CPU-only profile)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from image_roles import load_roles

from ktrdr.settings import Settings

from .conftest import DEPLOY, dev_tool, load_yaml, run_tool

COMPOSE = DEPLOY / "compose.yaml"
ROLES = load_roles()
KTRDR_SERVICES = [
    "backend",
    "backtest-worker-1",
    "backtest-worker-2",
    "training-worker",
    "training-worker-cpu",
]


def services() -> dict[str, dict]:
    return load_yaml(COMPOSE)["services"]


def image_role(service: dict) -> str:
    """The role-table image a service runs (from ``…/ktrdr-<image>:tag`` or ``${PREFIX}-<image>:tag``)."""
    match = re.search(r"-(backend|worker-cpu|worker-gpu):", service["image"])
    assert match, service["image"]
    return match[1]


def served_port(service: dict) -> int:
    """The port the service listens on: the role it serves (its command may pick another role)."""
    command = service.get("command")
    serve = command[command.index("serve") + 1] if command else ROLES[image_role(service)].serve
    return next(role.port for role in ROLES.values() if role.serve == serve)


def test_compose_matches_the_compose_specification() -> None:
    result = run_tool(dev_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text("services:\n  backend:\n    image: x\n    read_only: sometimes\n    tmpfs: {a: 1}\n")
    result = run_tool(dev_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken))
    assert result.returncode != 0


def test_the_services_of_one_host() -> None:
    svc = services()
    assert set(svc) == {"postgres", *KTRDR_SERVICES}
    assert [image_role(svc[n]) for n in KTRDR_SERVICES] == [
        "backend", "worker-cpu", "worker-cpu", "worker-gpu", "worker-cpu",
    ]  # fmt: skip
    assert svc["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert svc["backend"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", KTRDR_SERVICES)
def test_ktrdr_services_are_locked_down(name: str) -> None:
    service = services()[name]
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert service["user"] == "1000:1000"
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["healthcheck"]["test"] == ["CMD", "ktrdr", "healthcheck"]
    assert {"path": "ktrdr.env", "required": True} in service["env_file"]
    targets = {v.split(":")[1] for v in service["volumes"]}
    assert {"/app/data", "/app/data/models"} <= targets


@pytest.mark.parametrize("name", KTRDR_SERVICES[1:])
def test_workers_reach_the_backend_and_announce_their_own_port(name: str) -> None:
    service = services()[name]
    env = service["environment"]
    backend = urlparse(env["KTRDR_API_CLIENT_BASE_URL"])
    assert (backend.hostname, backend.port) == ("backend", ROLES["backend"].port)
    assert backend.path == Settings().api_prefix
    public = urlparse(env["KTRDR_WORKER_PUBLIC_BASE_URL"])
    assert (public.hostname, public.port) == (name, served_port(service))
    assert service["depends_on"] == {"backend": {"condition": "service_healthy"}}


def test_the_backend_publishes_its_role_port() -> None:
    port = ROLES["backend"].port
    assert services()["backend"]["ports"] == [f"${{KTRDR_BIND_ADDRESS:-127.0.0.1}}:{port}:{port}"]
    assert services()["backend"]["environment"]["KTRDR_DB_URL"].startswith("postgresql+asyncpg://")


def gpu_devices(service: dict) -> list[dict]:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


def test_only_the_training_worker_reserves_a_gpu() -> None:
    svc = services()
    assert gpu_devices(svc["training-worker"]) == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert [n for n, s in svc.items() if gpu_devices(s)] == ["training-worker"]


def test_the_cpu_variant_serves_training_from_worker_cpu() -> None:
    svc = services()
    gpu, cpu = svc["training-worker"], svc["training-worker-cpu"]
    assert (gpu["profiles"], cpu["profiles"]) == (["gpu"], ["cpu"])
    assert image_role(cpu) == "worker-cpu"
    port = ROLES["worker-gpu"].port
    assert cpu["command"] == [
        "ktrdr",
        "serve",
        ROLES["worker-gpu"].serve,
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
    ]
    # worker-cpu's image probes the backtest port unless told otherwise
    assert urlparse(cpu["environment"]["KTRDR_HEALTHCHECK_URL"]).port == port
    assert urlparse(cpu["environment"]["KTRDR_HEALTHCHECK_URL"]).path == ROLES["worker-gpu"].health
    assert not [
        n for n, s in svc.items() if "profiles" in s and n not in ("training-worker", "training-worker-cpu")
    ]


def test_every_required_variable_has_an_example() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required == {"POSTGRES_PASSWORD", "KTRDR_IMAGE_PREFIX"}
    example = (DEPLOY / "env.example").read_text()
    assert all(re.search(rf"^{var}=", example, re.M) for var in required)
    assert re.search(r"^KTRDR_API_TOKEN=", (DEPLOY / "ktrdr.env.example").read_text(), re.M)


def test_secrets_stay_out_of_git() -> None:
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert {".env", "ktrdr.env", "k8s/secrets.env"} <= set(ignored)
