"""Tier 1 (always, with nix-instantiate): the Nix files parse; flake.lock pins every input of
flake.nix with matching `follows`; the CPU-wheel table covers the locked torch; the role table only
names systems the flake supports."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import unquote

import pytest

from tools import runtime_closure

from .conftest import NIX_FLAGS, REPO, nix_eval, nix_instantiate

pytestmark = pytest.mark.nix

SUPPORTED_SYSTEMS = {"x86_64-linux", "aarch64-linux"}
LOCKED_KEYS = {"lastModified", "narHash", "owner", "repo", "rev", "type"}
# The steering folder's pinned input facts: beside the checkout, or where KTRDR_SHARED says (.ci/run).
SHARED = Path(os.environ.get("KTRDR_SHARED") or REPO.parent / "shared")
FLAKE_INPUTS_FACTS = SHARED / "reference" / "flake-inputs.json"

# What nix/python.nix passes to python313.override: arguments of nixpkgs'
# pkgs/development/interpreters/python/cpython/default.nix (read at nixpkgs 007088359e7a). Written
# out here so that a misspelt argument fails this test rather than the first real evaluation.
RUNTIME_PYTHON_ARGS = {
    "stripConfig": True,
    "stripIdlelib": True,
    "stripTests": True,
    "stripTkinter": True,
    "bluezSupport": False,
    "withReadline": False,
    "withGdbm": False,
}

# The arguments python313.override can take, as read (no build is possible here, and the pinned
# nixpkgs' own file could not be read): the formal arguments of
# pkgs/development/interpreters/python/cpython/default.nix at nixpkgs 007088359e7a. It has no `...`,
# so a name it does not list is an evaluation error there, and a failure of this test here.
CPYTHON_FORMALS_007088 = {
    "bluezSupport", "mimetypesSupport", "withGdbm", "withReadline", "x11Support", "stripConfig",
    "stripIdlelib", "stripTests", "stripTkinter", "rebuildBytecode", "stripBytecode",
    "includeSiteCustomize", "static", "enableFramework", "enableGIL", "enableOptimizations",
    "enableNoSemanticInterposition", "enableLTO", "reproducibleBuild", "packageOverrides",
    "tzdata", "ncurses", "readline", "gdbm", "openssl", "sqlite", "self", "sourceVersion", "hash",
}  # fmt: skip

NIX_FILES = sorted(
    [REPO / "flake.nix", *(REPO / "nix").rglob("*.nix"), *(REPO / "tests" / "nix").rglob("*.nix")]
)


def load_lock() -> dict:
    return json.loads((REPO / "flake.lock").read_text())


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def locked_torch_version() -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (torch,) = [p for p in lock["package"] if p["name"] == "torch"]
    return torch["version"]


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_nix_file_parses(path: Path) -> None:
    proc = subprocess.run([nix_instantiate(), "--parse", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_flake_has_the_expected_nix_files() -> None:
    names = {p.name for p in NIX_FILES}
    assert {
        "flake.nix",
        "python.nix",
        "torch.nix",
        "images.nix",
        "shells.nix",
        "checks.nix",
        "apps.nix",
    } <= names


def flake_inputs() -> dict:
    return nix_eval("(import ./flake.nix).inputs")


def test_flake_lock_is_version_7_with_a_root() -> None:
    lock = load_lock()
    assert lock["version"] == 7
    assert lock["root"] == "root"
    assert set(lock["nodes"]["root"]["inputs"]) == set(flake_inputs())


def test_every_input_is_locked_from_the_url_flake_nix_names() -> None:
    lock = load_lock()
    for name, spec in flake_inputs().items():
        node = lock["nodes"][lock["nodes"]["root"]["inputs"][name]]
        locked, original = node["locked"], node["original"]
        assert set(locked) == LOCKED_KEYS, name
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]), name
        assert re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"]), name
        assert isinstance(locked["lastModified"], int), name
        # github:owner/repo[/ref]
        kind, _, rest = spec["url"].partition(":")
        owner, repo, *ref = rest.split("/")
        assert kind == original["type"] == locked["type"] == "github", name
        assert (owner.lower(), repo) == (original["owner"].lower(), original["repo"]), name
        assert (locked["owner"].lower(), locked["repo"]) == (owner.lower(), repo), name
        assert original.get("ref") == (ref[0] if ref else None), name


# Inputs that keep a nested input of their own instead of following ours, with what their flake.nix
# declares for it (owner, repo): nix2container's default.nix patches its own nixpkgs' skopeo and pins
# a Go vendorHash tested only against that nixpkgs (flake.nix says why).
OWN_NESTED_INPUTS = {"nix2container": {"nixpkgs": ("NixOS", "nixpkgs")}}


def lock_problems(lock: dict, inputs: dict) -> list[str]:
    """What is wrong with ``lock`` for flake.nix's ``inputs``; empty when it is right.

    Every `follows` of flake.nix is in the lock; every nested input that does not follow is a node
    of its own, locked (rev, narHash) from the repository that input's flake names; every node is
    reachable from the root and locked.
    """
    problems: list[str] = []
    nodes = lock["nodes"]
    root_inputs = nodes[lock["root"]].get("inputs", {})
    if set(root_inputs) != set(inputs):
        problems.append(f"root inputs {sorted(root_inputs)} != flake.nix inputs {sorted(inputs)}")
    reachable: set[str] = {lock["root"]}

    def node_of(ref: str | list[str], where: str) -> str | None:
        if isinstance(ref, list):
            return None  # a follows path, checked against flake.nix below
        if ref not in nodes:
            problems.append(f"{where}: points at missing node {ref!r}")
            return None
        reachable.add(ref)
        locked = nodes[ref].get("locked", {})
        if set(locked) != LOCKED_KEYS or not re.fullmatch(r"sha256-[A-Za-z0-9+/]{43}=", locked["narHash"]):
            problems.append(f"{where}: node {ref!r} is not locked with {sorted(LOCKED_KEYS)}")
        return ref

    for name, spec in inputs.items():
        node_name = node_of(root_inputs.get(name, []), name)
        if node_name is None:
            continue
        nested = nodes[node_name].get("inputs", {})
        declared = spec.get("inputs", {})
        follows = {sub: s["follows"].split("/") for sub, s in declared.items() if "follows" in s}
        for sub, path in follows.items():
            if nested.get(sub) != path:
                problems.append(f"{name}/{sub}: lock has {nested.get(sub)!r}, flake.nix follows {path}")
        for sub, (owner, repo) in OWN_NESTED_INPUTS.get(name, {}).items():
            if sub in follows:
                problems.append(f"{name}/{sub} must not follow: {name} is tested against its own {sub}")
            ref = nested.get(sub)
            if not isinstance(ref, str):
                problems.append(f"{name}/{sub}: must be a node of its own, lock has {ref!r}")
                continue
            own = node_of(ref, f"{name}/{sub}")
            original = nodes[own].get("original", {}) if own else {}
            if own and (original.get("owner"), original.get("repo")) != (owner, repo):
                problems.append(f"{name}/{sub}: node {own!r} is {original}, not {owner}/{repo}")
        unexplained = set(nested) - set(follows) - set(OWN_NESTED_INPUTS.get(name, {}))
        if unexplained:
            problems.append(f"{name}: nested inputs {sorted(unexplained)} that flake.nix does not explain")
    orphans = set(nodes) - reachable
    if orphans:
        problems.append(f"nodes nothing points at: {sorted(orphans)}")
    return problems


def test_the_lock_agrees_with_flake_nix() -> None:
    assert lock_problems(load_lock(), flake_inputs()) == []


def _follow_nixpkgs(lock: dict) -> None:
    lock["nodes"]["nix2container"]["inputs"] = {"nixpkgs": ["nixpkgs"]}


def _unlock_nested_nixpkgs(lock: dict) -> None:
    del lock["nodes"][lock["nodes"]["nix2container"]["inputs"]["nixpkgs"]]["locked"]["narHash"]


def _drop_a_follows(lock: dict) -> None:
    del lock["nodes"]["uv2nix"]["inputs"]["pyproject-nix"]


def _orphan_node(lock: dict) -> None:
    lock["nodes"]["nixpkgs_3"] = lock["nodes"]["nixpkgs"]


def _dangling_reference(lock: dict) -> None:
    lock["nodes"]["nix2container"]["inputs"]["nixpkgs"] = "nixpkgs_9"


@pytest.mark.parametrize(
    "breakage",
    [_follow_nixpkgs, _unlock_nested_nixpkgs, _drop_a_follows, _orphan_node, _dangling_reference],
    ids=lambda f: f.__name__.strip("_"),
)
def test_the_lock_check_rejects_a_wrong_lock(breakage) -> None:
    lock = load_lock()
    breakage(lock)
    assert lock_problems(lock, flake_inputs()) != []


def test_flake_lock_is_written_as_nix_writes_it() -> None:
    """Byte for byte what `nix flake lock` would write for this graph, node names included: Nix
    names each node after the input that first reaches it, depth first over inputs in name order
    (LockFile::toJSON in src/libflake/lockfile.cc), so nix2container's nixpkgs, reached first, is
    `nixpkgs` and ours `nixpkgs_2`; keys sorted, two-space indent, a final newline. `nix flake
    metadata` prints the lock re-serialised that way without fetching anything when the lock is
    complete. A lock written otherwise works, but the first real re-lock renames its nodes."""
    nix = shutil.which("nix")
    if nix is None:
        pytest.skip("nix is not installed (Debian: apt-get install nix-bin)")
    if subprocess.run(["git", "ls-files", "--error-unmatch", "flake.lock"], cwd=REPO).returncode != 0:
        pytest.skip("the flake's files are not tracked by git")
    proc = subprocess.run(
        [nix, *NIX_FLAGS, "flake", "metadata", "--json", "--no-update-lock-file"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    written = json.dumps(json.loads(proc.stdout)["locks"], indent=2, sort_keys=True) + "\n"
    assert (REPO / "flake.lock").read_text() == written


def test_nix2container_does_not_follow_our_nixpkgs() -> None:
    assert "inputs" not in flake_inputs()["nix2container"]


def test_flake_lock_pins_the_known_good_input_set() -> None:
    if not FLAKE_INPUTS_FACTS.is_file():
        pytest.skip(f"{FLAKE_INPUTS_FACTS} is not on this machine")
    facts = json.loads(FLAKE_INPUTS_FACTS.read_text())["nodes"]
    lock = load_lock()
    for name, fact in facts.items():
        locked = lock["nodes"][lock["nodes"]["root"]["inputs"][name]]["locked"]
        assert {k: locked[k] for k in LOCKED_KEYS} == {k: fact[k] for k in LOCKED_KEYS}, name


def test_cpu_wheel_table_covers_the_locked_torch_for_cp313_on_both_arches() -> None:
    table = json.loads((REPO / "nix" / "torch-cpu-wheels.json").read_text())
    version = locked_torch_version()
    assert version in table["wheels"], f"nix/torch-cpu-wheels.json lacks torch {version}"
    for arch in ("x86_64", "aarch64"):
        assert f"cp313-{arch}" in table["wheels"][version], f"no cp313-{arch} CPU wheel for {version}"


def test_cpu_wheel_table_entries_are_well_formed() -> None:
    table = json.loads((REPO / "nix" / "torch-cpu-wheels.json").read_text())
    for version, entries in table["wheels"].items():
        for key, entry in entries.items():
            cp, arch = key.split("-")
            assert entry["url"].startswith(table["index"]), key
            assert unquote(entry["url"].rsplit("/", 1)[1]) == entry["file"], key
            assert entry["file"].startswith(f"torch-{version}+cpu-{cp}-{cp}-manylinux"), key
            assert entry["file"].endswith(f"_{arch}.whl"), key
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]), key
            sri = "sha256-" + base64.b64encode(bytes.fromhex(entry["sha256"])).decode()
            assert entry["hash"] == sri, key


def test_role_table_is_sane_for_nix() -> None:
    images = pyproject()["tool"]["ktrdr"]["images"]
    assert set(images) == {"backend", "worker-cpu", "worker-gpu"}
    ports = [role["port"] for role in images.values()]
    assert len(set(ports)) == len(ports)
    for name, role in images.items():
        assert role["platforms"], name
        assert set(role["platforms"]) <= SUPPORTED_SYSTEMS, name
        assert role["torch"] in {"none", "cpu", "cuda"}, name
        assert role["health"].startswith("/"), name
        assert role["serve"] and role["description"], name
        assert (role["torch"] != "none") == ("ml" in role["extras"]), name
    assert images["backend"]["torch"] == "none" and not {"ml"} & set(images["backend"]["extras"])
    assert images["worker-gpu"]["platforms"] == ["x86_64-linux"]


def test_backend_tests_check_runs_the_lean_ci_paths() -> None:
    script = (REPO / ".ci" / "run").read_text()
    lines = [line for line in script.splitlines() if "-m pytest" in line and ".venv-lean" in line]
    if not lines:
        pytest.skip(".ci/run has no lean-environment pytest step")
    (line,) = lines
    ci_paths = [word for word in line.split() if word.startswith("tests")]
    nix_paths = nix_eval("import ./nix/backend-tests.nix")
    assert nix_paths == ci_paths
    assert all((REPO / path).exists() for path in nix_paths)


# --- the prune table (nix/prune.json, applied by nix/prune.nix, measured by bench/sizes.py) -------

SAFE_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+*-]+)+")


def prune_paths() -> dict[str, list[str]]:
    return json.loads((REPO / "nix" / "prune.json").read_text())["paths"]


def test_prune_table_names_locked_packages_with_safe_patterns() -> None:
    from bench.sizes import key_matches

    lock = tomllib.loads((REPO / "uv.lock").read_text())
    names = {p["name"] for p in lock["package"]}
    for key, patterns in prune_paths().items():
        assert any(key_matches(key, name) for name in names), f"{key} matches no package of uv.lock"
        for pattern in patterns:
            # Relative to site-packages, below a named top-level directory, no `..`, nothing the
            # unquoted shell glob in nix/prune.nix could split or expand beyond `*`.
            assert SAFE_PATTERN.fullmatch(pattern) and ".." not in pattern.split("/"), pattern


def test_prune_table_spares_every_library_torch_links_or_preloads() -> None:
    """Checked on the installed CUDA torch and nvidia wheels where this environment has them."""
    import shutil
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "torch" / "lib").is_dir() or shutil.which("readelf") is None:
        pytest.skip("needs the installed torch wheel and readelf")
    libs = [*site.glob("torch/lib/*.so*"), *site.glob("nvidia/*/lib/*.so*"), *site.glob("torch/_C*.so")]
    needed: set[str] = set()
    for lib in libs:
        out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True).stdout
        needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
    # torch/__init__.py preloads these by glob from the nvidia wheels (cuda_libs, _preload_cuda_lib).
    preload = re.findall(r'"(lib[\w-]+\.so\.\*\[0-9\])"', (site / "torch" / "__init__.py").read_text())
    assert needed and preload
    pruned = [path for patterns in prune_paths().values() for p in patterns for path in site.glob(p)]
    for path in pruned:
        files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
        for file in files:
            assert file.name not in needed, f"{file} is linked by torch or an nvidia library"
            assert not any(Path(file.name).match(glob) for glob in preload), f"{file} is preloaded"


def test_the_runtime_interpreter_is_trimmed_with_cpythons_own_arguments() -> None:
    """nix/python.nix's override arguments, evaluated without nixpkgs (the attribute needs no lib)."""
    assert nix_eval(runtime_closure.SETTINGS_EXPR)["args"] == RUNTIME_PYTHON_ARGS


def test_the_runtime_interpreter_arguments_are_cpythons() -> None:
    """Every argument passed to python313.override is one of cpython's formal arguments."""
    for name in RUNTIME_PYTHON_ARGS:
        assert name in CPYTHON_FORMALS_007088, name
