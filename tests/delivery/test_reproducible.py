"""The images workflow's reproducibility step (.github/scripts/reproducible.py): what it rebuilds, and
that it fails when a rebuilt output differs from the first build.

The step's logic runs here end to end against a stand-in `nix` on PATH that answers the queries the
script makes and, for `nix build --rebuild`, behaves as Nix does: exit 0 when every output is the
same, or keep the differing rebuild as `<output>.check`, print Nix's message and exit 104.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
import reproducible

STORE = "/nix/store"
NIXOS_SIG = "cache.nixos.org-1:c2lnbmF0dXJl"
OURS_SIG = "ktrdr.cachix.org-1:c2lnbmF0dXJl"


def info(deriver: str | None, *sigs: str, ca: str | None = None) -> dict:
    entry: dict = {"signatures": list(sigs)}
    if deriver is not None:
        entry["deriver"] = deriver
    if ca is not None:
        entry["ca"] = ca
    return entry


def test_the_rebuild_set_is_what_we_built_plus_layers_and_image() -> None:
    closure = {
        f"{STORE}/aaa-glibc-2.40": info(f"{STORE}/a1-glibc-2.40.drv", NIXOS_SIG),
        f"{STORE}/bbb-python3-3.13.9": info(f"{STORE}/b1-python3-3.13.9.drv"),
        f"{STORE}/ccc-ktrdr-0.1.0": info(f"{STORE}/c1-ktrdr-0.1.0.drv"),
        f"{STORE}/ddd-fastapi-0.115.0": info(f"{STORE}/d1-fastapi-0.115.0.drv", OURS_SIG),
        f"{STORE}/eee-source": info(None, ca="fixed:r:sha256:1b2m2y8asgtpgamy7phcfxkbkwm"),
        f"{STORE}/fff-fastapi.whl": info(f"{STORE}/f1-fastapi.whl.drv", ca="fixed:sha256:0abc"),
        f"{STORE}/ggg-ktrdr-backend-env": info(f"{STORE}/g1-ktrdr-backend-env.drv"),
    }
    requisites = [
        f"{STORE}/l1-layers.json.drv",
        f"{STORE}/l2-layers.json.drv",
        f"{STORE}/x1-closure-graph.json.drv",
        f"{STORE}/a1-glibc-2.40.drv",
    ]
    image = f"{STORE}/i1-image-ktrdr-backend.json.drv"
    assert reproducible.rebuild_set(closure, requisites, image) == sorted(
        [
            f"{STORE}/b1-python3-3.13.9.drv",
            f"{STORE}/c1-ktrdr-0.1.0.drv",
            f"{STORE}/d1-fastapi-0.115.0.drv",  # from our own cache: rebuilt, compared across machines
            f"{STORE}/g1-ktrdr-backend-env.drv",
            f"{STORE}/l1-layers.json.drv",
            f"{STORE}/l2-layers.json.drv",
            image,
        ]
    )


def test_path_info_json_in_every_shape() -> None:
    old = [{"path": f"{STORE}/aaa-x", "deriver": f"{STORE}/a-x.drv"}]
    new = {f"{STORE}/aaa-x": {"deriver": f"{STORE}/a-x.drv"}, f"{STORE}/zzz-gone": None}
    bare = {"aaa-x": {"deriver": "a-x.drv"}}
    assert reproducible.path_infos(old) == {f"{STORE}/aaa-x": old[0]}
    assert reproducible.path_infos(new) == {f"{STORE}/aaa-x": {"deriver": f"{STORE}/a-x.drv"}}
    infos = reproducible.path_infos(bare)
    assert reproducible.rebuild_set(infos, [], "img.drv") == [f"{STORE}/a-x.drv", "img.drv"]


def test_nix_mismatch_messages_are_parsed() -> None:
    log = (
        f"error: derivation '{STORE}/c1-ktrdr-0.1.0.drv' may not be deterministic: output "
        f"'{STORE}/ccc-ktrdr-0.1.0' differs from '{STORE}/ccc-ktrdr-0.1.0.check'\n"
        f"error: derivation '{STORE}/g1-env.drv' may not be deterministic: output "
        f"'\x1b[35;1m{STORE}/ggg-env\x1b[0m' differs\n"
    )
    assert reproducible.parse_mismatches(log) == [
        (f"{STORE}/ccc-ktrdr-0.1.0", f"{STORE}/ccc-ktrdr-0.1.0.check"),
        (f"{STORE}/ggg-env", None),
    ]


def make_tree(root: Path, files: dict[str, str | tuple[str, str]]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_text(content)
    return root


def test_identical_trees_have_no_differences(tmp_path: Path) -> None:
    files = {"lib/a.py": "x", "lib/b.pyc": "y", "bin/link": ("link", "../lib/a.py")}
    assert (
        reproducible.tree_differences(make_tree(tmp_path / "a", files), make_tree(tmp_path / "b", files))
        == []
    )


def test_every_kind_of_difference_is_named(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a", {"x.pyc": "1", "only-a": "", "link": ("l", "t1"), "run": "#!"})
    b = make_tree(tmp_path / "b", {"x.pyc": "2", "only-b": "", "link": ("l", "t2"), "run": "#!"})
    (b / "run").chmod(0o755)
    lines = reproducible.tree_differences(a, b)
    assert "only in the first build: only-a" in lines
    assert "only in the rebuild: only-b" in lines
    assert any(line.startswith("differs: x.pyc") for line in lines)
    assert any(line.startswith("differs: link (symlink -> t1 vs symlink -> t2)") for line in lines)
    assert any(line.startswith("differs: run (- ") for line in lines)
    assert len(lines) == 5


# --- the whole step against a stand-in nix ---------------------------------------------------------

FAKE_NIX = """\
import json, os, sys
scenario = json.load(open(os.environ["FAKE_NIX_SCENARIO"]))
args = sys.argv[1:]
with open(scenario["calls"], "a") as calls:
    calls.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\\n")
if os.path.basename(sys.argv[0]) == "nix-store":
    print("\\n".join(scenario["requisites"]))
elif "--rebuild" in args:
    for out in scenario.get("differ", []):
        check = out + ".check"
        os.makedirs(check, exist_ok=True)
        for name, content in scenario["rebuilt_files"].items():
            with open(os.path.join(check, name), "w") as f:
                f.write(content)
        drv = scenario["drv_of"][out]
        sys.stderr.write(f"error: derivation '{drv}' may not be deterministic: "
                         f"output '{out}' differs from '{check}'\\n")
    sys.exit(scenario.get("rebuild_exit", 0))
elif "--print-out-paths" in args:
    print(scenario["image"])
elif "--derivation" in args:
    print(scenario["image_drv"])
elif "--json" in args:
    print(json.dumps(scenario["closure"]))
else:
    sys.exit(f"unexpected nix call {args}")
"""


@pytest.fixture
def fake_nix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("nix", "nix-store"):
        tool = bindir / name
        tool.write_text(f"#!{sys.executable}\n{FAKE_NIX}")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    store = tmp_path / "store"
    ktrdr = make_tree(store / "ccc-ktrdr-0.1.0", {"ktrdr.pyc": "first build"})
    scenario = {
        "image": str(store / "iii-image-ktrdr-backend.json"),
        "image_drv": str(store / "i1-image-ktrdr-backend.json.drv"),
        "closure": {
            str(ktrdr): {"deriver": str(store / "c1-ktrdr-0.1.0.drv"), "signatures": []},
            str(store / "aaa-glibc"): {"deriver": str(store / "a1-glibc.drv"), "signatures": [NIXOS_SIG]},
        },
        "requisites": [str(store / "l1-layers.json.drv"), str(store / "a1-glibc.drv")],
        "drv_of": {str(ktrdr): str(store / "c1-ktrdr-0.1.0.drv")},
        "calls": str(tmp_path / "calls.jsonl"),
        "rebuilt_files": {"ktrdr.pyc": "second build"},
    }
    path = tmp_path / "scenario.json"

    def write(**changes: object) -> dict:
        path.write_text(json.dumps(scenario | changes))
        monkeypatch.setenv("FAKE_NIX_SCENARIO", str(path))
        return scenario | changes

    return write


def calls(scenario: dict) -> list[list[str]]:
    return [json.loads(line) for line in Path(scenario["calls"]).read_text().splitlines()]


def rebuild_calls(scenario: dict) -> list[list[str]]:
    return [call for call in calls(scenario) if "--rebuild" in call]


def test_the_step_passes_when_every_rebuild_is_identical(fake_nix, tmp_path: Path) -> None:
    scenario = fake_nix()
    summary = tmp_path / "summary.md"
    assert reproducible.main([".#backend-image", "--summary", str(summary)]) == 0
    (call,) = rebuild_calls(scenario)
    assert {"--rebuild", "--keep-failed"} <= set(call)
    rebuilt = [a.removesuffix("^*") for a in call if a.endswith("^*")]
    assert sorted(reproducible.name_of(d) for d in rebuilt) == [
        "image-ktrdr-backend.json",
        "ktrdr-0.1.0",
        "layers.json",
    ]
    text = summary.read_text()
    assert "Rebuilt 3 derivations" in text and "bit-identical" in text
    flake_calls = [call for call in calls(scenario) if ".#backend-image" in call]
    assert flake_calls and all("--no-update-lock-file" in call for call in flake_calls), "a stale lock fails"


def test_the_step_fails_and_names_the_file_when_two_outputs_differ(fake_nix, tmp_path: Path) -> None:
    ktrdr = str(tmp_path / "store" / "ccc-ktrdr-0.1.0")
    fake_nix(differ=[ktrdr], rebuild_exit=104)
    summary = tmp_path / "summary.md"
    assert reproducible.main([".#backend-image", "--summary", str(summary)]) == 1
    text = summary.read_text()
    assert "**Not reproducible** (nix exited 104)" in text
    assert f"`{ktrdr}` differs from `{ktrdr}.check`" in text
    assert "differs: ktrdr.pyc" in text


def test_the_step_fails_when_nix_fails_without_comparing(fake_nix, tmp_path: Path) -> None:
    fake_nix(rebuild_exit=1)
    assert reproducible.main([".#backend-image"]) == 1


def test_the_step_fails_on_a_reported_difference_even_if_nix_exits_zero(fake_nix, tmp_path: Path) -> None:
    fake_nix(differ=[str(tmp_path / "store" / "ccc-ktrdr-0.1.0")], rebuild_exit=0)
    assert reproducible.main([".#backend-image"]) == 1
