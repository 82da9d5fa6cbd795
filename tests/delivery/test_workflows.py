"""The GitHub workflows: schema-valid, zizmor-clean, least privilege, pinned actions, and a build
matrix that is the role table's."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
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
    ci = load_yaml(WORKFLOWS / "ci.yml")["concurrency"]
    assert ci["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    # GitHub keeps one pending run per group and cancels the older pending one when another queues,
    # whatever cancel-in-progress says: a group shared by the runs on main would drop the middle one
    # of three quick pushes. Pull requests share theirs per ref; every other run has its own.
    assert ci["group"] == "ci-${{ github.event_name == 'pull_request' && github.ref || github.run_id }}"
    assert load_yaml(WORKFLOWS / "images.yml")["concurrency"]["cancel-in-progress"] is False


def concurrency_groups() -> list[tuple[str, str]]:
    groups = []
    for path in WORKFLOW_FILES:
        workflow = load_yaml(path)
        if "concurrency" in workflow:
            groups.append((path.name, workflow["concurrency"]["group"]))
        for name, job in workflow["jobs"].items():
            if "concurrency" in job:
                groups.append((f"{path.name}:{name}", job["concurrency"]["group"]))
    return groups


def test_no_concurrency_group_is_shared_across_refs() -> None:
    """A group shared across refs lets one ref's queued run cancel another's waiting one: a tag's
    publish (its version tag and sha-<short> index) would be lost to a later push to main."""
    groups = concurrency_groups()
    assert groups
    for where, group in groups:
        assert "github.ref" in group or "github.run_id" in group, (where, group)


def publish_arguments(tmp_path: Path, ref: str, ref_type: str, ref_name: str) -> list[str]:
    """Run the publish step's script as GitHub would (bash -eo pipefail) for a run on ``ref``,
    with a stand-in python3 that records the arguments publish_index.py gets."""
    (step,) = [s for s in jobs("images.yml")["publish"]["steps"] if "publish_index.py" in s.get("run", "")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv"
    fake = bin_dir / "python3"
    fake.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > {record}\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "REF": ref,
        "REF_TYPE": ref_type,
        "REF_NAME": ref_name,
        "LEGS": "[]",
        "SKIPPED": "[]",
        "REPRODUCIBLE": "success",
        "AUDIT": "success",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
    }
    subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=tmp_path, env=env, check=True)
    return record.read_text().splitlines()


def floating_tags(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "--floating"]


def test_only_runs_on_main_move_latest_and_a_tag_publishes_its_version(tmp_path: Path) -> None:
    """Runs on main are one at a time (the workflow's group), so their latest moves cannot race;
    a tag's run, in a group of its own, publishes its version and sha-<short> and leaves latest."""
    main = publish_arguments(tmp_path, "refs/heads/main", "branch", "main")
    assert floating_tags(main) == ["latest"] and "sha-0123456" in main
    tag = publish_arguments(tmp_path, "refs/tags/v1.2.3", "tag", "v1.2.3")
    assert floating_tags(tag) == ["1.2.3"] and "sha-0123456" in tag
    assert floating_tags(publish_arguments(tmp_path, "refs/heads/feature", "branch", "feature")) == []


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
                assert job["environment"] == {
                    "name": "${{ needs.plan.outputs.cachix-environment }}",
                    "deployment": False,
                }
                assert step["with"]["skipPush"] == (
                    "${{ matrix.image == 'worker-gpu' || needs.plan.outputs.cachix-environment != 'cachix' }}"
                )
                assert step["with"]["pushFilter"] == "${{ env.CACHIX_PUSH_FILTER }}"
            else:
                assert step["with"]["skipPush"] is True, (path.name, name)
    # pull requests run only ci.yml
    assert "pull_request" not in load_yaml(WORKFLOWS / "images.yml")[True]


def cachix_environment(tmp_path: Path, ref: str) -> str:
    """What the plan job's step names as the build legs' environment for a run on ``ref``."""
    plan = jobs("images.yml")["plan"]
    assert plan["outputs"]["cachix-environment"] == "${{ steps.cachix.outputs.environment }}"
    (step,) = [s for s in plan["steps"] if s.get("id") == "cachix"]
    assert step["env"] == {"REF": "${{ github.ref }}"}
    output = tmp_path / f"output-{ref.replace('/', '-')}"
    env = {"PATH": "/usr/bin:/bin", "REF": ref, "GITHUB_OUTPUT": str(output)}
    subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], env=env, check=True, capture_output=True)
    (line,) = output.read_text().splitlines()
    key, _, value = line.partition("=")
    assert key == "environment"
    return value


def test_only_main_and_version_tags_build_in_the_environment_that_pushes_to_cachix(tmp_path: Path) -> None:
    """The `cachix` environment's branch rules (main, v* tags) would keep a leg of a manual run
    from another branch from starting at all: such a run builds in a secret-less environment and
    pushes nothing."""
    assert cachix_environment(tmp_path, "refs/heads/main") == "cachix"
    assert cachix_environment(tmp_path, "refs/tags/v1.2.3") == "cachix"
    assert cachix_environment(tmp_path, "refs/heads/feature") == "cachix-read-only"
    assert cachix_environment(tmp_path, "refs/tags/nightly") == "cachix-read-only"


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


def test_ci_evaluates_every_systems_outputs_without_building_them() -> None:
    """`nix flake check` alone checks only the runner's system (x86_64 Linux): aarch64 Linux and the
    macOS dev shells and apps would never be evaluated. `--all-systems` with `--no-build` evaluates
    them all and builds nothing (Nix's src/nix/flake.cc: only the local system's checks are built,
    and `--no-build` builds none)."""
    steps = jobs("ci.yml")["nix"]["steps"]
    runs = [shlex.split(step.get("run", "")) for step in steps]
    evaluate = [
        i for i, argv in enumerate(runs) if argv[:3] == ["nix", "flake", "check"] and "--all-systems" in argv
    ]
    build = [
        i
        for i, argv in enumerate(runs)
        if argv[:3] == ["nix", "flake", "check"] and "--all-systems" not in argv
    ]
    assert len(evaluate) == 1 and len(build) == 1
    assert {"--no-build", "--no-update-lock-file"} <= set(runs[evaluate[0]])
    assert "--no-build" not in runs[build[0]]
    assert evaluate[0] < build[0], "the cheap evaluation of every system fails first"


def lean_test_paths(text: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ".venv-lean/bin/python -m pytest" in ln)
    return [arg for arg in shlex.split(line) if arg.startswith("tests")]


def test_ci_runs_the_same_lean_backend_tests_as_the_ci_script() -> None:
    ci = load_yaml(WORKFLOWS / "ci.yml")["jobs"]["python"]
    lean_step = next(s for s in ci["steps"] if "--no-default-groups" in s.get("run", ""))
    assert lean_step["env"]["UV_PROJECT_ENVIRONMENT"] == ".venv-lean"
    assert lean_test_paths(lean_step["run"]) == lean_test_paths((ROOT / ".ci" / "run").read_text())


def browser_step(tmp_path: Path, browsers: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ci.yml's browser step as GitHub would, on a PATH that holds only ``browsers`` (stand-ins
    that print a version) and the shell's own tools."""
    (step,) = [s for s in jobs("ci.yml")["python"]["steps"] if "browser" in s.get("name", "")]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name in browsers:
        (bin_dir / name).write_text(f"#!/bin/sh\necho {name} 1.0\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": str(bin_dir)}
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run(
        [bash, "-eo", "pipefail", "-c", step["run"]], env=env, capture_output=True, text=True
    )


def test_the_browser_step_never_fails_and_installs_nothing(tmp_path: Path) -> None:
    """The report's browser tests find Chromium or Chrome themselves (KTRDR_CHROMIUM, else PATH) and
    skip without one; on Ubuntu 24.04 `apt-get install chromium` gets no browser, so the step only
    reports which browser there is."""
    none = browser_step(tmp_path / "none", [])
    assert none.returncode == 0, none.stderr
    assert "no Chromium or Chrome" in none.stdout
    chrome = browser_step(tmp_path / "chrome", ["google-chrome"])
    assert chrome.returncode == 0 and "google-chrome 1.0" in chrome.stdout
