"""ci.yml's pytest step runs the tier-1 Nix tests as the runner user, not as root (as .ci/run does): the
store it points nix-instantiate at (NIX_REMOTE, under the runner's temp folder) must work for an
unprivileged user with Debian's nix-bin. Checked here by running the tier-1 evaluations as `nobody`
with that setting; needs root (to drop to nobody) and setpriv, and skips elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, WORKFLOWS, load_yaml

pytestmark = pytest.mark.nix

NOBODY = "65534"


def pytest_step_env() -> dict[str, str]:
    steps = load_yaml(WORKFLOWS / "ci.yml")["jobs"]["python"]["steps"]
    (step,) = [s for s in steps if s.get("run", "").startswith("uv run --frozen pytest")]
    return step["env"]


def as_nobody(env: dict[str, str], *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    setpriv = shutil.which("setpriv")
    nix = shutil.which("nix-instantiate")
    if os.geteuid() != 0 or setpriv is None or nix is None:
        pytest.skip("needs root, setpriv and nix-instantiate to run Nix as an unprivileged user")
    home = cwd / "home"
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    drop = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    base = {"PATH": os.environ["PATH"], "HOME": str(home)}
    return subprocess.run(
        [*drop, "env", "-i", *(f"{k}={v}" for k, v in (base | env).items()), nix, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def readable_checkout() -> Iterator[Path]:
    """flake.nix where `nobody` can read it (the worktree and pytest's tmp_path are private to root)."""
    with tempfile.TemporaryDirectory(prefix="ktrdr-ci-nix-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        shutil.copy(ROOT / "flake.nix", folder / "flake.nix")
        (folder / "flake.nix").chmod(0o644)
        yield folder


def test_the_runner_user_evaluates_with_the_store_ci_yml_sets(readable_checkout: Path) -> None:
    runner_temp = readable_checkout / "runner-temp"  # the runner user's own temp folder
    runner_temp.mkdir()
    runner_temp.chmod(0o777)
    store = pytest_step_env()["NIX_REMOTE"].replace("${{ runner.temp }}", str(runner_temp))
    env = {"NIX_REMOTE": store}
    parsed = as_nobody(env, "--parse", "flake.nix", cwd=readable_checkout)
    assert parsed.returncode == 0, parsed.stderr
    evaluated = as_nobody(
        env, "--eval", "--json", "-E", "(import ./flake.nix).description", cwd=readable_checkout
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "ktrdr" in evaluated.stdout


def test_a_store_the_user_cannot_write_fails(readable_checkout: Path) -> None:
    """The check above can fail: the same evaluation against a store root nobody can create."""
    result = as_nobody(
        {"NIX_REMOTE": "local?root=/proc/ktrdr-nix-root"}, "--parse", "flake.nix", cwd=readable_checkout
    )
    assert result.returncode != 0
