"""The images workflow's plan and publish logic (.github/scripts/image_roles.py plan,
.github/scripts/publish_index.py), on fabricated leg artifacts: the arm64 switch, per-image
publishing when a leg fails, floating tags gated on the reproducibility check and the audit, and a
`latest` that only moves forward (checked against a real git history)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from image_roles import build_matrix, load_roles, plan_legs
from publish_index import collect, decide, main, moves_forward, summary

from .conftest import write_leg

ROLES = load_roles()
COMMIT = "c" * 40


def legs_of(plan: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(leg["image"], leg["arch"]) for leg in plan}


@pytest.mark.parametrize(
    ("switch", "private", "arm64_built"),
    [
        ("", False, True),
        ("auto", False, True),
        ("AUTO", True, False),
        ("", True, False),
        ("on", True, True),
        ("off", False, False),
    ],
)
def test_the_arm64_switch_and_the_repository_visibility(
    switch: str, private: bool, arm64_built: bool
) -> None:
    legs, skipped = plan_legs(ROLES, switch, private)
    everything = legs_of(build_matrix(ROLES))
    arm64 = {leg for leg in everything if leg[1] == "arm64"}
    assert legs_of(legs) == (everything if arm64_built else everything - arm64)
    assert legs_of(skipped) == (set() if arm64_built else arm64)
    assert all(leg["runner"] == "ubuntu-24.04" for leg in legs if leg["arch"] == "amd64")
    for leg in skipped:
        assert "ARM64_LEGS" in leg["reason"]


def test_an_unknown_switch_value_is_an_error() -> None:
    with pytest.raises(SystemExit, match="ARM64_LEGS='yes'"):
        plan_legs(ROLES, "yes", False)


def write_legs(root: Path, legs: list[dict[str, str]], fail: set[tuple[str, str]] = frozenset()) -> None:
    for leg in legs:
        if (leg["image"], leg["arch"]) not in fail:
            write_leg(
                root, leg["image"], leg["arch"], [("sha256:base", 100, 40), (f"sha256:{leg['image']}", 1, 1)]
            )


def run_decide(
    tmp_path: Path,
    *,
    plan: tuple[list, list] | None = None,
    fail: set[tuple[str, str]] = frozenset(),
    floating: tuple[str, ...] = ("latest",),
    gates: dict[str, str] | None = None,
    latest_at: str | None = None,
    forward: bool = True,
):
    legs, skipped = plan or plan_legs(ROLES, "on", False)
    write_legs(tmp_path, legs, fail)
    return {
        d.image: d
        for d in decide(
            ROLES,
            {"legs": legs, "skipped": skipped},
            collect(tmp_path),
            sha_tag="sha-ccccccc",
            floating=list(floating),
            gates=gates if gates is not None else {"reproducible": "success", "audit": "success"},
            latest_revision=lambda _repo: latest_at,
            moves_forward=lambda _old, _new: forward,
            commit=COMMIT,
        )
    }


def test_every_image_is_published_under_its_tags_with_every_architecture(tmp_path: Path) -> None:
    decisions = run_decide(tmp_path, floating=("latest", "1.2.3"))
    backend = decisions["backend"]
    assert backend.tags == ["sha-ccccccc", "latest", "1.2.3"]
    assert backend.sources == [
        "ghcr.io/o/ktrdr-backend@sha256:backendamd64",
        "ghcr.io/o/ktrdr-backend@sha256:backendarm64",
    ]
    cmd = backend.command(COMMIT)
    assert cmd[:4] == ["docker", "buildx", "imagetools", "create"]
    assert ["--annotation", f"index:org.opencontainers.image.revision={COMMIT}"] == cmd[4:6]
    assert "ghcr.io/o/ktrdr-backend:latest" in cmd
    assert decisions["worker-gpu"].sources == ["ghcr.io/o/ktrdr-worker-gpu@sha256:worker-gpuamd64"]
    assert not any(d.skipped for d in decisions.values())


def test_a_failed_leg_skips_only_its_image(tmp_path: Path) -> None:
    decisions = run_decide(tmp_path, fail={("worker-cpu", "arm64")})
    assert decisions["worker-cpu"].skipped == "the arm64 leg did not pass (no artifact)"
    assert decisions["backend"].tags == ["sha-ccccccc", "latest"]
    assert decisions["worker-gpu"].tags == ["sha-ccccccc", "latest"]
    text = summary(list(decisions.values()), {})
    assert "**ktrdr-worker-cpu: not published**, the arm64 leg did not pass" in text


def test_arm64_left_out_by_the_plan_publishes_amd64_and_says_why(tmp_path: Path) -> None:
    decisions = run_decide(tmp_path, plan=plan_legs(ROLES, "", True))
    backend = decisions["backend"]
    assert backend.skipped is None
    assert backend.sources == ["ghcr.io/o/ktrdr-backend@sha256:backendamd64"]
    assert any("arm64 not built" in note and "public repositories only" in note for note in backend.notes)


@pytest.mark.parametrize("gate", ["reproducible", "audit"])
@pytest.mark.parametrize("result", ["failure", "cancelled", "skipped"])
def test_floating_tags_wait_for_the_reproducibility_check_and_the_audit(
    tmp_path: Path, gate: str, result: str
) -> None:
    gates = {"reproducible": "success", "audit": "success", gate: result}
    decisions = run_decide(tmp_path, floating=("latest", "1.2.3"), gates=gates)
    for d in decisions.values():
        assert d.tags == ["sha-ccccccc"], d.image
        assert any(f"{gate} ({result}) did not pass" in note for note in d.notes)


def test_latest_never_moves_back(tmp_path: Path) -> None:
    decisions = run_decide(tmp_path, floating=("latest", "1.2.3"), latest_at="a" * 40, forward=False)
    for d in decisions.values():
        assert d.tags == ["sha-ccccccc", "1.2.3"], "the version tag is published, latest is not moved"
        assert any("it is at aaaaaaaaaaaa; this commit does not descend" in note for note in d.notes)


def test_latest_moves_forward_or_when_there_is_none(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run_decide(tmp_path / "a", latest_at="a" * 40, forward=True)["backend"].tags[-1] == "latest"
    assert run_decide(tmp_path / "b", latest_at=None, forward=False)["backend"].tags[-1] == "latest"


def test_a_latest_without_a_revision_is_left_alone(tmp_path: Path) -> None:
    decision = run_decide(tmp_path, latest_at="", forward=True)["backend"]
    assert decision.tags == ["sha-ccccccc"]
    assert "records no revision" in decision.notes[0]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_moves_forward_follows_the_git_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    commits = []
    for i in range(3):
        git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", str(i))
        commits.append(git(repo, "rev-parse", "HEAD").strip())
    old, mid, new = commits
    monkeypatch.chdir(repo)
    assert moves_forward(old, new) and moves_forward(new, new)
    assert not moves_forward(new, mid), "an older commit never moves latest back"
    assert not moves_forward("f" * 40, new), "a commit the history lacks is not an ancestor"


def test_the_cli_publishes_in_dry_run_and_fails_when_an_image_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    legs, skipped = plan_legs(ROLES, "on", False)
    write_legs(tmp_path, legs, fail={("worker-gpu", "amd64")})
    argv = [str(tmp_path), "--plan", json.dumps({"legs": legs, "skipped": skipped}), "--commit", COMMIT]
    argv += ["--sha-tag", "sha-ccccccc", "--gate", "audit=success", "--dry-run"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "docker buildx imagetools create" in out and "ktrdr-worker-gpu: not published" in out
    with pytest.raises(SystemExit, match="NAME=RESULT"):
        main([*argv, "--gate", "audit"])
