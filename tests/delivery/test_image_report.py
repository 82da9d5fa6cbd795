"""The images workflow's size summary (.github/scripts/image_report.py) on fabricated leg data: real
sizes next to the budgets (the role table's, the ones the size-budget test and the bench read) and
the estimates, the top layer an app-only change re-pushes, the bytes the images share, and a failing
run when an image or its top layer is over its budget."""

from __future__ import annotations

import json
from pathlib import Path

import image_report
import pytest
from image_roles import load_roles

from .conftest import write_leg

MB = 1_000_000
ROLES = load_roles()


def images(root: Path) -> list[image_report.BuiltImage]:
    return [image_report.read_image(p.parent) for p in sorted(root.glob("*/meta.json"))]


def two_images(root: Path, backend_mb: int = 102) -> None:
    write_leg(
        root,
        "backend",
        "amd64",
        [("sha256:py", (backend_mb - 2) * MB, 30 * MB), ("sha256:app", 2 * MB, MB)],
    )
    write_leg(
        root,
        "worker-cpu",
        "amd64",
        [("sha256:py", 100 * MB, 30 * MB), ("sha256:torch", 500 * MB, 200 * MB), ("sha256:w", MB, MB // 2)],
    )


def test_the_report_puts_real_sizes_next_to_budget_estimate_and_top_layer(tmp_path: Path) -> None:
    two_images(tmp_path)
    estimates = {
        "worker-cpu": {
            "x86_64": {
                "wheel_bytes": 247_166_523,
                "stand_ins": {},
                "image_bytes": 690_000_000,
                "app_bytes": 2_200_000,
            }
        }
    }
    text = image_report.report(images(tmp_path), ROLES, estimates)
    budget = ROLES["backend"].image_budget_mb
    cpu_budget = ROLES["worker-cpu"].image_budget_mb
    assert "**All 2 built images are within their budgets.**" in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ktrdr-")]
    assert rows == [
        [
            "| ktrdr-backend",
            "amd64",
            "102.0 MB",
            f"{budget:,} MB",
            "31.0 MB",
            "—",
            "—",
            "2",
            "2.00 MB (1.00 MB compressed)",
            "5 MB |",
        ],
        [
            "| ktrdr-worker-cpu",
            "amd64",
            "601.0 MB",
            f"{cpu_budget:,} MB",
            "230.5 MB",
            "690.0 MB / 2.20 MB",
            "247.2 MB",
            "3",
            "1.00 MB (0.50 MB compressed)",
            "5 MB |",
        ],
    ]
    assert "| backend + worker-cpu | 100.0 MB | 30.0 MB |" in text
    assert "downloads 231.5 MB compressed and stores 603.0 MB instead of 261.5 MB / 703.0 MB" in text
    assert "Not built in this run: ktrdr-backend (arm64)" in text


def test_a_top_layer_over_its_budget_fails_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    top = ROLES["backend"].app_budget_mb + 1
    write_leg(tmp_path, "backend", "amd64", [("sha256:py", 100 * MB, 30 * MB), ("sha256:app", top * MB, MB)])
    assert image_report.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"ktrdr-backend (amd64) top layer {top:.2f} MB > {top - 1} MB" in out
    assert f"{top:.2f} MB (1.00 MB compressed) ❌ over" in out


def test_a_stand_in_wheel_is_named_in_the_estimate(tmp_path: Path) -> None:
    write_leg(tmp_path, "worker-cpu", "arm64", [("sha256:a", 600 * MB, 200 * MB)])
    estimates = {
        "worker-cpu": {
            "aarch64": {"wheel_bytes": 204_702_709, "stand_ins": {"torch": "2.13.0 cp312-aarch64"}}
        }
    }
    text = image_report.report(images(tmp_path), ROLES, estimates)
    assert "204.7 MB (torch: 2.13.0 cp312-aarch64 stands in)" in text


def test_an_image_over_its_budget_fails_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    budget = ROLES["backend"].image_budget_mb
    two_images(tmp_path, backend_mb=budget + 1)
    estimates_file = tmp_path / "estimates.json"
    estimates_file.write_text(json.dumps({}))
    assert image_report.main([str(tmp_path), "--estimates", str(estimates_file)]) == 1
    out = capsys.readouterr().out
    assert f"**Over budget: ktrdr-backend (amd64) {budget + 1:,}.0 MB > {budget:,} MB.**" in out
    assert f"| ktrdr-backend | amd64 | {budget + 1:,}.0 MB ❌ over |" in out


def test_an_image_at_its_budget_passes(tmp_path: Path) -> None:
    two_images(tmp_path, backend_mb=ROLES["backend"].image_budget_mb)
    assert image_report.main([str(tmp_path)]) == 0


def test_the_report_refuses_a_manifest_that_does_not_match_the_build(tmp_path: Path) -> None:
    write_leg(tmp_path, "backend", "amd64", [("sha256:a", 1, 1)])
    (tmp_path / "backend-amd64" / "manifest.json").write_text(json.dumps({"layers": []}))
    with pytest.raises(ValueError, match="1 layers built but 0 in the registry"):
        image_report.read_image(tmp_path / "backend-amd64")


def test_no_artifacts_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no image artifacts"):
        image_report.main([str(tmp_path)])
