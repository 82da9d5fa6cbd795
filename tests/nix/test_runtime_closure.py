"""tools/runtime_closure.py measures the interpreter as nix/python.nix builds it: what the Nix
attributes remove, the measuring tool removes too, and bench/runtime-closure.json says where each
part is and that the parts the interpreter leaves out are the ones its arguments drop."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tools import runtime_closure

from .conftest import REPO, nix_eval, nix_instantiate


def nix_removals() -> tuple[list[str], list[str]]:
    """(lib-dynload module prefixes, other paths under $out) that runtimePythonAttrs removes."""
    post_install = nix_eval(runtime_closure.SETTINGS_EXPR)["attrs"]["postInstall"]
    (modules,) = re.findall(r"lib-dynload/\{([^}]+)\}\*\.so", post_install)
    (rest,) = re.findall(r"rm -rf (.+)", post_install)
    return modules.split(","), [p.removeprefix("$out/") for p in rest.split()]


def fake_prefix(root: Path) -> Path:
    stdlib = root / "lib" / "python3.13"
    for rel in ("lib-dynload", "ensurepip/_bundled", "pydoc_data", "json", "test"):
        (stdlib / rel).mkdir(parents=True)
    for name in ("_testcapi", "_xxtestfuzz", "xxlimited", "xxsubtype", "_ctypes_test", "_json", "_curses"):
        (stdlib / "lib-dynload" / f"{name}.cpython-313-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    (root / "include" / "python3.13").mkdir(parents=True)
    return stdlib


def test_the_tool_removes_what_the_nix_attributes_remove(tmp_path: Path) -> None:
    modules, paths = nix_removals()
    assert sorted(modules) == sorted(runtime_closure.TEST_MODULES)
    stdlib = fake_prefix(tmp_path)
    runtime_closure.runtime_trim(stdlib)
    left = {p.name for p in (stdlib / "lib-dynload").iterdir()}
    assert left == {"_json.cpython-313-x86_64-linux-gnu.so"}
    for path in paths:
        assert not list(tmp_path.glob(path.replace("python*", "python3.13"))), path
    assert (stdlib / "json").is_dir()


def test_the_table_leaves_out_exactly_what_the_arguments_drop() -> None:
    table = json.loads((REPO / "bench" / "runtime-closure.json").read_text())
    stock_only = {name for name, part in table["parts"].items() if part["where"] == "stock-only"}
    assert stock_only == {"ncurses", "readline", "gdbm"}
    runtime, stock = table["python"]["runtime"], table["python"]["stock"]
    assert runtime["bytecode_by_level"]["1"] == runtime["bytecode_by_level"]["2"] == 0
    assert stock["bytecode_by_level"]["1"] > 0 and runtime["tar_bytes"] < stock["tar_bytes"]
    assert runtime["include"] == 0


def test_the_interpreter_was_measured_with_todays_settings() -> None:
    """nix/python.nix's interpreter arguments and attributes, as evaluated, are the ones
    bench/runtime-closure.json's interpreter was measured with."""
    nix_instantiate()
    recorded = json.loads((REPO / "bench" / "runtime-closure.json").read_text())["python"]["settings_sha256"]
    assert recorded == runtime_closure.interpreter_settings(), (
        "nix/python.nix's interpreter settings changed: run tools/runtime_closure.py again"
    )
