"""bench.imports: the tracer records every module a process asks for (found or not) and loads, in
child processes too, and the analysis lists the subtrees of a package nothing asked for."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.imports import never_imported_subtrees, read_trace, run_traced


def test_the_tracer_records_asked_and_loaded_modules_of_every_process(tmp_path: Path) -> None:
    child = "import json"
    code = (
        "import subprocess, sys\n"
        "try:\n    import no_such_module_here\nexcept ImportError:\n    pass\n"
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
    )
    run_traced([[sys.executable, "-c", code]], tmp_path)
    asked, loaded = read_trace(tmp_path)
    assert "no_such_module_here" in asked and "no_such_module_here" not in loaded
    assert {"subprocess", "json"} <= loaded  # json only in the child
    assert len(list(tmp_path.glob("loaded-*.txt"))) == 2


def test_never_imported_subtrees_are_the_largest_untouched_packages(tmp_path: Path) -> None:
    site = tmp_path
    for package in ("pkg", "pkg/used", "pkg/used/deep", "pkg/unused", "pkg/unused/inner"):
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("x = 1\n" * 200)
    (site / "pkg/data").mkdir()
    (site / "pkg/data/blob.bin").write_bytes(b"0" * 10_000)  # no modules: not a subtree of code
    asked = {"pkg", "pkg.used"}
    found = never_imported_subtrees(site / "pkg", site, asked, min_bytes=100)
    assert [entry["path"] for entry in found] == ["pkg/unused", "pkg/used/deep"]
    assert found[0]["bytes"] > found[1]["bytes"]
    asked.add("pkg.unused.inner")  # a module below it was asked for: only its untouched parts count
    assert [entry["path"] for entry in never_imported_subtrees(site / "pkg", site, asked, 100)] == [
        "pkg/used/deep"
    ]
