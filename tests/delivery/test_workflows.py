"""The GitHub workflows: schema-valid, zizmor-clean, least privilege, pinned actions, and a build
matrix that is the role table's."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from image_roles import build_matrix, load_roles

from .conftest import ROOT, WORKFLOWS, dev_tool, load_yaml, run_tool

WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")


def test_the_two_workflows_exist() -> None:
    assert {p.name for p in WORKFLOW_FILES} == {"ci.yml", "images.yml"}


def test_workflows_match_the_github_workflow_schema() -> None:
    tool = dev_tool("check-jsonschema")
    files = [str(p) for p in WORKFLOW_FILES]
    result = run_tool(tool, "--builtin-schema", "vendor.github-workflows", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    dependabot = ROOT / ".github" / "dependabot.yml"
    result = run_tool(tool, "--builtin-schema", "vendor.dependabot", str(dependabot))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps: {run: true}\n")
    result = run_tool(
        dev_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)
    )
    assert result.returncode != 0


def test_zizmor_finds_nothing_offline() -> None:
    result = run_tool(dev_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path) -> None:
    refs = [m for line in path.read_text().splitlines() if (m := USES.match(line))]
    assert refs, f"{path.name} uses no action"
    for m in refs:
        action, _, sha = m["ref"].partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{action} is not pinned by commit SHA: {m['ref']}"
        assert re.fullmatch(r"\s*#\s*v\d+(\.\d+)*", m["rest"]), f"{action}@{sha} lacks a '# vX.Y.Z' comment"


def test_one_action_version_per_action_across_workflows() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES:
        for line in path.read_text().splitlines():
            if m := USES.match(line):
                action, _, sha = m["ref"].partition("@")
                pins.setdefault(action, set()).add(sha)
    assert {a: s for a, s in pins.items() if len(s) > 1} == {}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_least_privilege(path: Path) -> None:
    workflow = load_yaml(path)
    assert workflow["permissions"] == {}, "the workflow must grant nothing by default"
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must state its own permissions"
        grants = job["permissions"]
        assert grants.get("contents") in ("read", None), f"job {name} must not write repository contents"
        if "packages" in grants or "id-token" in grants:
            assert path.name == "images.yml", f"{path.name}:{name} publishes nothing, so needs no token"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_checkout_never_persists_credentials(path: Path) -> None:
    steps = [s for job in load_yaml(path)["jobs"].values() for s in job["steps"]]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


def images_workflow() -> dict:
    return load_yaml(WORKFLOWS / "images.yml")


def test_the_build_matrix_is_the_role_table() -> None:
    matrix = images_workflow()["jobs"]["build"]["strategy"]["matrix"]
    assert set(matrix) == {"include"}, "every leg is listed explicitly"
    roles = load_roles()
    assert sorted(matrix["include"], key=str) == sorted(build_matrix(roles), key=str)
    assert set(roles) == {"backend", "worker-cpu", "worker-gpu"}
    legs = {(leg["image"], leg["arch"]) for leg in matrix["include"]}
    assert {arch for image, arch in legs if image == "worker-gpu"} == {"amd64"}
    assert {arch for image, arch in legs if image != "worker-gpu"} == {"amd64", "arm64"}


def test_legs_run_natively_on_their_architecture() -> None:
    build = images_workflow()["jobs"]["build"]
    assert build["runs-on"] == "${{ matrix.runner }}"
    for leg in build["strategy"]["matrix"]["include"]:
        assert leg["runner"] == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}[leg["arch"]]


def step_runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_images_are_smoke_tested_before_they_are_pushed() -> None:
    steps = images_workflow()["jobs"]["build"]["steps"]
    runs = [step.get("run", "") for step in steps]
    build = next(i for i, r in enumerate(runs) if 'nix build -L ".#${IMAGE}-image"' in r)
    load = next(i for i, r in enumerate(runs) if "copyToDockerDaemon" in r)
    smoke = next(i for i, r in enumerate(runs) if "smoke_test.py" in r)
    push = next(i for i, r in enumerate(runs) if "skopeo-nix2container" in r and "docker://" in r)
    assert build < load < smoke < push
    assert "nix:" in runs[push], "pushed with the nix: transport, no tarball"


def test_publish_waits_for_every_leg_and_signs() -> None:
    jobs = images_workflow()["jobs"]
    publish = jobs["publish"]
    assert publish["needs"] == ["build"]
    assert "if" not in publish, "publishing must not run when a leg failed"
    assert {"packages": "write", "id-token": "write"}.items() <= publish["permissions"].items()
    uses = [s.get("uses", "") for s in publish["steps"]]
    assert any(u.startswith("sigstore/cosign-installer@") for u in uses)
    assert "publish_index.py" in step_runs(publish)


def test_sboms_are_attested_and_the_lock_is_audited() -> None:
    jobs = images_workflow()["jobs"]
    uses = [s.get("uses", "") for s in jobs["build"]["steps"]]
    assert any(u.startswith("actions/attest-sbom@") for u in uses)
    assert {"attestations": "write", "id-token": "write"}.items() <= jobs["build"]["permissions"].items()
    assert "image_sbom.py" in step_runs(jobs["build"])
    assert "pip-audit" in step_runs(jobs["audit"])


def test_the_backend_image_is_rebuilt_and_compared() -> None:
    run = step_runs(images_workflow()["jobs"]["reproducible"])
    assert "nix build -L .#backend-image" in run
    assert "--rebuild" in run


def test_ci_runs_lint_tests_and_nix_from_the_lock() -> None:
    jobs = load_yaml(WORKFLOWS / "ci.yml")["jobs"]
    python = step_runs(jobs["python"])
    for command in (
        "uv sync --locked",
        "ruff check",
        "ruff format --check",
        "mypy",
        "lint-imports",
        "pytest",
        "zizmor",
    ):
        assert command in python
    setup_uv = next(s for s in jobs["python"]["steps"] if s.get("uses", "").startswith("astral-sh/setup-uv@"))
    assert setup_uv["with"]["python-version"] == "3.13"
    assert "nix flake check -L" in step_runs(jobs["nix"])


def lean_test_paths(text: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ".venv-lean/bin/python -m pytest" in ln)
    return [arg for arg in shlex.split(line) if arg.startswith("tests")]


def test_ci_runs_the_same_lean_backend_tests_as_the_ci_script() -> None:
    ci = load_yaml(WORKFLOWS / "ci.yml")["jobs"]["python"]
    lean_step = next(s for s in ci["steps"] if "--no-default-groups" in s.get("run", ""))
    assert lean_step["env"]["UV_PROJECT_ENVIRONMENT"] == ".venv-lean"
    assert lean_test_paths(lean_step["run"]) == lean_test_paths((ROOT / ".ci" / "run").read_text())
