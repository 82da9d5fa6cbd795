"""The GitHub workflows: schema-valid, zizmor-clean, least privilege, pinned actions, and a build
matrix that is the role table's."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import unquote

import pytest
from image_roles import build_matrix, load_roles, plan_legs

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


def jobs(name: str) -> dict:
    return load_yaml(WORKFLOWS / name)["jobs"]


def step_runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def uses(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(f"{action}@")]


def test_the_build_legs_are_the_role_tables_planned_legs() -> None:
    images = jobs("images.yml")
    build, plan = images["build"], images["plan"]
    assert build["needs"] == ["plan"]
    assert build["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.plan.outputs.legs) }}"}
    assert plan["outputs"]["legs"] == "${{ steps.plan.outputs.legs }}"
    (step,) = [s for s in plan["steps"] if s.get("id") == "plan"]
    assert "image_roles.py plan" in step["run"] and '"$GITHUB_OUTPUT"' in step["run"]
    # the arm64 switch and the repository's visibility reach the plan
    assert step["env"] == {
        "ARM64_LEGS": "${{ vars.ARM64_LEGS }}",
        "PRIVATE": "${{ github.event.repository.private }}",
    }
    roles = load_roles()
    legs, skipped = plan_legs(roles, "on", False)
    assert legs == build_matrix(roles) and skipped == []
    assert {(leg["image"], leg["arch"]) for leg in legs if leg["image"] == "worker-gpu"} == {
        ("worker-gpu", "amd64")
    }


def test_legs_run_natively_on_their_architecture() -> None:
    build = jobs("images.yml")["build"]
    assert build["runs-on"] == "${{ matrix.runner }}"
    for leg in build_matrix(load_roles()):
        assert leg["runner"] == {"amd64": "ubuntu-24.04", "arm64": "ubuntu-24.04-arm"}[leg["arch"]]


def test_images_and_their_checks_are_built_and_smoke_tested_before_they_are_pushed() -> None:
    steps = jobs("images.yml")["build"]["steps"]
    runs = [step.get("run", "") for step in steps]
    build = next(
        i for i, r in enumerate(runs) if 'nix build -L --no-update-lock-file ".#${IMAGE}-image"' in r
    )
    assert '".#${IMAGE}-checks"' in runs[build], (
        "every leg builds its role's checks (worker-gpu's only there)"
    )
    load = next(i for i, r in enumerate(runs) if "copyToDockerDaemon" in r)
    smoke = next(i for i, r in enumerate(runs) if "smoke_test.py" in r)
    push = next(i for i, r in enumerate(runs) if "skopeo-nix2container" in r and "docker://" in r)
    assert build < load < smoke < push
    assert "nix:" in runs[push], "pushed with the nix: transport, no tarball"
    free = next(i for i, s in enumerate(steps) if s.get("if") == "matrix.image == 'worker-gpu'")
    assert free < build and "rm -rf" in runs[free], "the worker-gpu leg frees the disk first"


FLAKE_COMMAND = re.compile(r"\bnix (build|run|eval|flake check|path-info)\b[^\n]*")


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_a_stale_lock_fails_instead_of_being_relocked(path: Path) -> None:
    commands = [
        m[0] for job in load_yaml(path)["jobs"].values() for m in FLAKE_COMMAND.finditer(step_runs(job))
    ]
    flake_commands = [c for c in commands if ".#" in c or "flake check" in c]
    if path.name == "ci.yml":
        assert flake_commands, "ci.yml runs nix flake check"
    for command in flake_commands:
        assert "--no-update-lock-file" in command, command
    # the reproducibility script builds the flake too, and passes the flag itself
    assert '"--no-update-lock-file"' in (ROOT / ".github" / "scripts" / "reproducible.py").read_text()


def test_publish_is_per_image_gated_and_signed() -> None:
    images = jobs("images.yml")
    publish = images["publish"]
    assert set(publish["needs"]) == {"plan", "build", "reproducible", "audit"}
    assert publish["if"] == "${{ !cancelled() && needs.plan.result == 'success' }}", "runs when a leg failed"
    assert publish["concurrency"] == {"group": "images-publish", "cancel-in-progress": False}
    assert {"packages": "write", "id-token": "write"}.items() <= publish["permissions"].items()
    (checkout,) = uses(publish, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "latest moves only forward along the history"
    assert uses(publish, "sigstore/cosign-installer")
    (step,) = [s for s in publish["steps"] if "publish_index.py" in s.get("run", "")]
    assert step["env"]["REPRODUCIBLE"] == "${{ needs.reproducible.result }}"
    assert step["env"]["AUDIT"] == "${{ needs.audit.result }}"
    assert '--gate "reproducible=${REPRODUCIBLE}" --gate "audit=${AUDIT}"' in step["run"]
    assert "--floating latest" in step["run"]


def test_the_summary_reports_sizes_against_budgets_and_fails_over_them() -> None:
    report = jobs("images.yml")["report"]
    assert set(report["needs"]) == {"plan", "build"}
    run = step_runs(report)
    assert "python -m bench.estimate > estimates.json" in run
    assert "image_report.py legs --estimates estimates.json | tee" in run


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_piped_steps_fail_when_their_command_fails(path: Path) -> None:
    """An unspecified shell is `bash -e` without pipefail: `cmd | tee` would hide cmd's failure."""
    workflow = load_yaml(path)
    if any("| tee" in step_runs(job) for job in workflow["jobs"].values()):
        assert workflow["defaults"]["run"]["shell"] == "bash"


def test_sboms_are_attested_with_actions_attest_and_the_lock_is_audited() -> None:
    images = jobs("images.yml")
    build = images["build"]
    assert not any("attest-sbom" in s.get("uses", "") for job in images.values() for s in job["steps"])
    (attest,) = uses(build, "actions/attest")
    assert attest["with"]["sbom-path"] == "leg/${{ matrix.image }}-${{ matrix.arch }}/sbom.cdx.json"
    assert attest["with"]["push-to-registry"] is True
    assert "private" in attest["if"], "attestations need a public repository (or Enterprise Cloud)"
    needed = {"attestations": "write", "id-token": "write", "packages": "write", "artifact-metadata": "write"}
    assert needed.items() <= build["permissions"].items()
    assert "image_sbom.py" in step_runs(build)
    assert "pip-audit" in step_runs(images["audit"])


def test_every_setup_uv_pins_one_uv_version() -> None:
    """The SBOM export is a uv preview feature: its output depends on the uv version."""
    steps = [
        s
        for p in WORKFLOW_FILES
        for job in load_yaml(p)["jobs"].values()
        for s in uses(job, "astral-sh/setup-uv")
    ]
    versions = {s["with"].get("version") for s in steps}
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions.pop() or ""), versions
    cached = [s for s in steps if s["with"].get("enable-cache") is True]
    assert cached and all(s["with"]["prune-cache"] is True for s in cached)


def test_the_backend_image_is_rebuilt_where_nondeterminism_lives() -> None:
    run = step_runs(jobs("images.yml")["reproducible"])
    assert "nix build -L --no-update-lock-file .#backend-image" in run
    assert "reproducible.py .#backend-image" in run
    assert "inspect" not in run, "comparing one out-link with itself proves nothing"


def test_ci_cancels_superseded_runs_on_pull_requests_only() -> None:
    assert load_yaml(WORKFLOWS / "ci.yml")["concurrency"]["cancel-in-progress"] == (
        "${{ github.event_name == 'pull_request' }}"
    )
    assert load_yaml(WORKFLOWS / "images.yml")["concurrency"]["cancel-in-progress"] is False


def cachix_steps(path: Path) -> list[tuple[str, dict, dict]]:
    return [
        (name, job, step)
        for name, job in load_yaml(path)["jobs"].items()
        for step in uses(job, "cachix/cachix-action")
    ]


def test_only_the_image_legs_push_to_cachix_with_an_environment_secret() -> None:
    for path in WORKFLOW_FILES:
        for name, job, step in cachix_steps(path):
            if "authToken" in step["with"]:
                assert (path.name, name) == ("images.yml", "build"), "pull requests and checks only read"
                assert step["with"]["authToken"] == "${{ secrets.CACHIX_AUTH_TOKEN }}"
                assert job["environment"] == {"name": "cachix", "deployment": False}
                assert step["with"]["skipPush"] == "${{ matrix.image == 'worker-gpu' }}"
                assert step["with"]["pushFilter"] == "${{ env.CACHIX_PUSH_FILTER }}"
            else:
                assert step["with"]["skipPush"] is True, (path.name, name)
    # pull requests run only ci.yml
    assert "pull_request" not in load_yaml(WORKFLOWS / "images.yml")[True]


def store_names_from_the_lock() -> tuple[set[str], set[str]]:
    """Store path names of the lock's CUDA packages (installs and wheel files), and of the rest."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    cuda, other = set(), set()
    for package in lock["package"]:
        names = {f"{package['name']}-{package['version']}"}
        names |= {unquote(w["url"].rsplit("/", 1)[1]) for w in package.get("wheels", [])}
        if package["name"].startswith(("nvidia-", "cuda-")) or package["name"] in ("triton", "torch"):
            cuda |= names
        else:
            other |= names
    torch = next(p for p in lock["package"] if p["name"] == "torch")
    cuda_torch = {n for n in cuda if n.startswith("torch-") and "+cpu" not in n}
    other |= {
        f"torch-{torch['version']}+cpu",
        f"torch-{torch['version']}+cpu-cp313-cp313-manylinux_2_28_x86_64.whl",
    }
    return cuda_torch | {n for n in cuda if not n.startswith("torch-")}, other


def test_the_push_filter_keeps_the_cuda_wheels_and_installs_out_of_cachix() -> None:
    pattern = re.compile(load_yaml(WORKFLOWS / "images.yml")["env"]["CACHIX_PUSH_FILTER"])
    cuda, other = store_names_from_the_lock()
    store = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-"
    assert {n for n in cuda if not pattern.search(store + n)} == set()
    extra_cuda = ["ktrdr-worker-gpu-env", "ktrdr-worker-gpu-checks"]
    assert all(pattern.search(store + n) for n in extra_cuda)
    kept = [
        "ktrdr-backend-env",
        "ktrdr-worker-cpu-env",
        "python3-3.13.9",
        "layers.json",
        "image-ktrdr-backend.json",
    ]
    assert {n for n in [*other, *kept] if pattern.search(store + n)} == set()


def test_ci_runs_lint_tests_and_nix_from_the_lock() -> None:
    ci = jobs("ci.yml")
    python = step_runs(ci["python"])
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
    (setup_uv,) = uses(ci["python"], "astral-sh/setup-uv")
    assert setup_uv["with"]["python-version"] == "3.13"
    assert "nix flake check -L --no-update-lock-file" in step_runs(ci["nix"])
    assert uses(ci["nix"], "cachix/install-nix-action"), "a multi-user Nix: its steps run as the runner user"


def lean_test_paths(text: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ".venv-lean/bin/python -m pytest" in ln)
    return [arg for arg in shlex.split(line) if arg.startswith("tests")]


def test_ci_runs_the_same_lean_backend_tests_as_the_ci_script() -> None:
    ci = load_yaml(WORKFLOWS / "ci.yml")["jobs"]["python"]
    lean_step = next(s for s in ci["steps"] if "--no-default-groups" in s.get("run", ""))
    assert lean_step["env"]["UV_PROJECT_ENVIRONMENT"] == ".venv-lean"
    assert lean_test_paths(lean_step["run"]) == lean_test_paths((ROOT / ".ci" / "run").read_text())
