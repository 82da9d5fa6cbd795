"""The image role table in pyproject.toml ([tool.ktrdr.images.*]) agrees with the code.

Nix builds the images from that table (command, port, extras, torch variant, platforms); this test
makes sure what it says is true of the Python side, so nothing about an image is written twice.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ktrdr.cli.serve import APPS
from ktrdr.settings import DEFAULT_PORTS

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
ROLES: dict[str, dict[str, Any]] = PYPROJECT["tool"]["ktrdr"]["images"]
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])


def _app(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def test_the_three_images_are_described():
    assert set(ROLES) == {"backend", "worker-cpu", "worker-gpu"}


@pytest.mark.parametrize("name", sorted(ROLES))
def test_serve_target_runs_the_roles_app_on_the_default_port(name):
    role = ROLES[name]
    assert role["serve"] in APPS, f"{name}: `ktrdr serve {role['serve']}` does not exist"
    assert APPS[role["serve"]] == role["app"]
    assert role["port"] == DEFAULT_PORTS[role["serve"]]


@pytest.mark.parametrize("name", sorted(ROLES))
def test_app_imports_and_serves_the_health_path(name):
    role = ROLES[name]
    if role["torch"] != "none":
        pytest.importorskip("torch", reason=f"{name} runs with torch (the 'ml' extra)")
    app = _app(role["app"])
    # Included routers may be resolved lazily; the OpenAPI document lists every route they hold.
    paths = set(app.openapi()["paths"]) | {getattr(route, "path", None) for route in app.routes}
    assert role["health"] in paths
    assert "get" in app.openapi()["paths"][role["health"]]


@pytest.mark.parametrize("name", sorted(ROLES))
def test_extras_torch_and_platforms_are_consistent(name):
    role = ROLES[name]
    assert set(role["extras"]) <= EXTRAS
    assert role["torch"] in {"none", "cpu", "cuda"}
    assert set(role["platforms"]) <= {"x86_64-linux", "aarch64-linux"} and role["platforms"]
    if role["torch"] == "none":
        assert "ml" not in role["extras"]
    else:
        assert "ml" in role["extras"]
    if role["torch"] == "cuda":
        assert role["platforms"] == ["x86_64-linux"]


def test_backend_role_is_lean():
    backend = ROLES["backend"]
    assert "ml" not in backend["extras"] and backend["torch"] == "none"
    probe = (
        f"import sys, importlib; importlib.import_module({backend['app'].split(':')[0]!r}); "
        "print(','.join(m for m in ('torch', 'numpy', 'pandas', 'plotly', 'plotille') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_no_image_takes_the_report_extra():
    """The charts are drawn by the CLI (ktrdr.report): no server image carries a charting library."""
    assert "report" in EXTRAS
    assert not [name for name, role in ROLES.items() if "report" in role["extras"]]


def test_worker_apps_import_without_loading_torch():
    # Torch loads at start-up (the dependency check), so `--help`, the role test and tooling stay fast.
    probe = (
        "import sys, importlib; "
        + "; ".join(f"importlib.import_module({ROLES[n]['app'].split(':')[0]!r})" for n in ROLES)
        + "; print(','.join(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
