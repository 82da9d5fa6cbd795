"""Tier 2 (where KTRDR_NIX_INPUTS is set): our real nix/*.nix overlays evaluated with the real uv2nix,
pyproject.nix and build-system-pkgs code against a mock of the nixpkgs scope (tests/nix/harness.nix),
for both architectures; and the real flake's lib-level outputs through `nix eval --override-input`.
Nothing is built: this proves what each image's environment resolves to, not that it builds."""

from __future__ import annotations

import json
import subprocess
import tomllib
from functools import cache
from typing import Any

import pytest

from .conftest import NIX_FLAGS, REPO, NixEvalError, harness, nix_eval, nix_inputs
from .test_nix_static import RUNTIME_PYTHON_ARGS

pytestmark = pytest.mark.nix

ARCHES = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}
CUDA_PREFIXES = ("nvidia-", "cuda-")
HEAVY = {"torch", "numpy", "pandas"}


def is_cuda_only(name: str) -> bool:
    return name.startswith(CUDA_PREFIXES) or name == "triton"


@cache
def evaluated(system: str) -> dict[str, Any]:
    return nix_eval(harness(nix_inputs(), system))


def wheel_table() -> dict[str, Any]:
    return json.loads((REPO / "nix" / "torch-cpu-wheels.json").read_text())


def locked_torch() -> dict[str, Any]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return next(p for p in lock["package"] if p["name"] == "torch")


def locked_torch_version() -> str:
    return str(locked_torch()["version"])


@pytest.fixture(params=sorted(ARCHES))
def system(request: pytest.FixtureRequest) -> str:
    return request.param


def test_the_role_table_drives_systems_and_images(system: str) -> None:
    result = evaluated(system)
    assert result["systems"] == ["x86_64-linux", "aarch64-linux"]
    expected = {"backend", "worker-cpu"} | ({"worker-gpu"} if system == "x86_64-linux" else set())
    assert set(result["rolesForSystem"]) == expected


def test_every_third_party_package_is_a_wheel(system: str) -> None:
    formats = evaluated(system)["wheelFormats"]
    assert formats.pop("ktrdr") == "local"
    assert set(formats.values()) == {"wheel"}


def test_backend_has_no_numeric_or_cuda_packages(system: str) -> None:
    packages = set(evaluated(system)["images"]["backend"]["packages"])
    assert {"ktrdr", "fastapi", "uvicorn", "sqlalchemy", "pydantic"} <= packages
    assert not packages & HEAVY
    assert not [p for p in packages if is_cuda_only(p)]


def test_worker_cpu_has_the_cpu_wheel_and_nothing_cuda(system: str) -> None:
    image = evaluated(system)["images"]["worker-cpu"]
    packages = set(image["packages"])
    assert packages >= HEAVY
    assert not [p for p in packages if is_cuda_only(p)]
    version = locked_torch_version()
    entry = wheel_table()["wheels"][version][f"cp313-{ARCHES[system]}"]
    torch = image["torchAttrs"]
    assert torch["src"] == {"name": entry["file"], "url": entry["url"], "hash": entry["hash"]}
    assert "+" in torch["src"]["name"]
    assert torch["version"] == f"{version}+cpu"
    assert not [d for d in torch["dependencies"] if is_cuda_only(d)]
    pruned = ("torch/include", "torch/share/cmake", "torch/test", "torch/bin/test_*", "torch/bin/protoc*")
    assert all(f"site-packages/{p}" in torch["postInstall"] for p in pruned)
    assert_strips_torch_libs(torch)


def assert_strips_torch_libs(torch: dict[str, Any]) -> None:
    """nixpkgs' strip hook is asked for --strip-unneeded on torch/lib (symbol tables, not .dynsym)."""
    assert torch["stripAllList"] == ["lib/python3.13/site-packages/torch/lib"]
    assert torch["stripAllFlags"] == ["--strip-unneeded"]


def test_worker_gpu_has_cuda_torch_with_its_fixups() -> None:
    result = evaluated("x86_64-linux")
    image = result["images"]["worker-gpu"]
    packages = set(image["packages"])
    nvidia = {p for p in packages if p.startswith("nvidia-")}
    assert {"nvidia-cudnn-cu13", "nvidia-nccl-cu13", "nvidia-cublas", "nvidia-cuda-runtime"} <= nvidia
    assert {"torch", "cuda-bindings", "cuda-toolkit"} <= packages
    # nix/torch.nix drops triton (torch.compile's code generator) from the CUDA torch.
    assert "triton" not in packages
    torch = image["torchAttrs"]
    assert torch["version"] == locked_torch_version()
    # The CUDA variant keeps the wheel uv.lock pinned (PyPI's CUDA build), not the CPU index's.
    assert torch["src"]["url"] in {wheel["url"] for wheel in locked_torch()["wheels"]}
    assert torch["autoPatchelfIgnoreMissingDeps"] == ["libcuda.so.1"]
    assert torch["appendRunpaths"][0] == "$ORIGIN"
    assert "/usr/lib64" in torch["appendRunpaths"]
    searched = {line.split("-", 1)[1].split("/")[0] for line in torch["preFixup"].splitlines()}
    assert {p.rsplit("-", 1)[0] for p in searched} >= {"nvidia-cudnn-cu13", "nvidia-cublas"}
    assert "triton" not in torch["dependencies"]
    assert_strips_torch_libs(torch)
    for pruned in ("torch/include", "torch/share/cmake", "torch/bin/protoc*"):
        assert f"site-packages/{pruned}" in torch["postInstall"]
    for name, fixup in image["cudaLibFixups"].items():
        assert "*" not in fixup["ignore"], name  # names only (test_nix_fixups.py: from cuda-libs.json)
        assert "$ORIGIN" in fixup["appendRunpaths"], name


def test_the_prune_table_reaches_every_package_it_names(system: str) -> None:
    """nix/prune.json, read by nix/prune.nix, lands in the postInstall of exactly the packages
    whose names its keys match, in every image's package set; bench/sizes.py reads it the same way."""
    from bench.sizes import prune_patterns

    result = evaluated(system)
    table = json.loads((REPO / "nix" / "prune.json").read_text())["paths"]
    assert result["pruneTable"]["paths"] == table
    reached: set[str] = set()
    for name, image in result["images"].items():
        for package, pruned in image["pruned"].items():
            expected = prune_patterns(package)
            assert pruned["paths"] == expected, (name, package)
            script = pruned["postInstall"]
            assert all(f"$out/lib/python3.13/site-packages/{p}" in script for p in expected), package
            reached |= {package} if expected else set()
    assert {"torch", "numpy", "pandas"} <= reached
    if system == "x86_64-linux":
        assert {"nvidia-cusolver", "nvidia-cuda-nvrtc", "nvidia-cudnn-cu13"} <= reached


def test_the_strip_hook_is_back_on_for_every_wheel_but_the_cuda_ones(system: str) -> None:
    """uv2nix sets dontStrip on every wheel; nix/strip.nix turns it off for each wheel that is not
    CUDA-only (torch included: its torch/lib strip needs the hook on), in every image's set, and
    leaves the nvidia-*, cuda-* and triton wheels as uv2nix has them. bench/sizes.py uses the same rule."""
    from bench.sizes import strips

    stripped: set[str] = set()
    for name, image in evaluated(system)["images"].items():
        for package, attrs in image["strip"].items():
            if attrs["format"] != "wheel":
                assert package == "ktrdr" and attrs["dontStrip"] is None, (name, package)
            elif is_cuda_only(package):
                assert attrs["dontStrip"] is True, (name, package)
                assert not strips(package)
            else:
                assert attrs["dontStrip"] is False, (name, package)
                assert strips(package)
                stripped.add(package)
    assert {"sqlalchemy", "asyncpg", "pyyaml", "greenlet", "torch", "numpy", "pandas"} <= stripped
    if system == "x86_64-linux":
        cuda = evaluated(system)["images"]["worker-gpu"]["strip"]
        assert {"nvidia-nccl-cu13", "cuda-bindings"} <= {p for p, a in cuda.items() if a["dontStrip"] is True}


def test_every_set_is_built_on_one_trimmed_interpreter(system: str) -> None:
    """mkPythonSets instantiates all three variants on the same python313.override, with cpython's
    strip arguments and `self` pointing at the override (else its passthru is the stock python)."""
    runtime = evaluated(system)["runtimePython"]
    assert set(runtime) == {"none", "cpu", "cuda"}
    assert len({variant["path"] for variant in runtime.values()}) == 1
    for variant in runtime.values():
        assert variant["args"] == RUNTIME_PYTHON_ARGS
        assert variant["selfIsTheOverride"] is True
        # runtimePythonAttrs: no curses modules (no ncurses in the closure), level-0 bytecode only,
        # and pyproject.nix's hooks install with this interpreter, not a second CPython.
        flags = variant["configureFlags"]
        assert {"py_cv_module__curses=n/a", "py_cv_module__curses_panel=n/a"} <= set(flags)
        assert "--without-ensurepip" in flags, "cpython's own flags are kept"
        assert variant["postInstall"].startswith("# stock postInstall")
        assert "find $out -name '*.opt-1.pyc' -delete" in variant["postInstall"]
        assert "find $out -name '*.opt-2.pyc' -delete" in variant["postInstall"]
        assert variant["buildPythonIsItself"] is True


def test_the_layer_plan_splits_each_image_without_gaps_or_strays(system: str) -> None:
    result = evaluated(system)
    layers, images = result["layers"], result["images"]
    common, ml = set(layers["common"]), set(layers["ml"])
    assert not common & ml
    assert {"fastapi", "pydantic-core"} <= common and "ktrdr" not in common
    assert {"numpy", "pandas"} <= ml and not [p for p in ml if p == "torch" or is_cuda_only(p)]
    for name, image in images.items():
        packages = set(image["packages"])
        torch, own = set(layers["torch"][name]), set(layers["own"][name])
        # The shared layers only hold what every image of that kind has...
        assert common <= packages, name
        if image["torch"] != "none":
            assert ml <= packages, name
        # ...and together with the image's own layer they hold all of it.
        shared = common | (ml if image["torch"] != "none" else set())
        assert shared | torch | own == packages, name
        assert "ktrdr" in own, name
        # The extras' layer sits below the image's own, which keeps only ktrdr (and the venv).
        assert set(layers["extras"][name]) == own - {"ktrdr"}, name
    assert "asyncpg" not in common  # the postgres extra: only the images that ask for it
    assert layers["extras"]["backend"] == ["asyncpg"]
    assert layers["extras"]["worker-cpu"] == []
    assert layers["torch"]["worker-cpu"] == ["torch"]


def test_missing_cpu_wheel_fails_evaluation_with_a_clear_message() -> None:
    only_213 = '{ index = "https://example.invalid/"; wheels = { "2.13.0" = { "cp313-x86_64" = { }; }; }; }'
    expr = (
        f"({harness(nix_inputs(), 'x86_64-linux', f'wheels = {only_213};')}).images.worker-cpu.torchAttrs.src"
    )
    with pytest.raises(NixEvalError) as excinfo:
        nix_eval(expr)
    message = str(excinfo.value)
    assert f"has no CPU wheel for torch {locked_torch_version()} (cp313-x86_64)" in message
    assert "2.13.0: cp313-x86_64" in message


def test_image_configs_come_from_the_role_table(system: str) -> None:
    roles = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]
    configs = evaluated(system)["imageConfigs"]
    for name, role in roles.items():
        config = configs[name]
        env = dict(item.split("=", 1) for item in config["Env"])
        assert config["User"] == "1000:1000"
        assert config["WorkingDir"] == "/app"
        assert config["Entrypoint"][0].endswith("/bin/tini")
        assert config["Cmd"][1:] == ["serve", role["serve"], "--host", "0.0.0.0", "--port", str(role["port"])]
        assert config["Cmd"][0] == env["PATH"] + "/ktrdr"
        assert config["ExposedPorts"] == {f"{role['port']}/tcp": {}}
        assert env["KTRDR_HEALTHCHECK_URL"] == f"http://127.0.0.1:{role['port']}{role['health']}"
        assert env["KTRDR_DATA_DIR"] == "/app/data"
        assert env["KTRDR_MODELS_DIR"] == "/app/data/models"
        assert env["HOME"] == "/home/ktrdr" and env["TMPDIR"] == "/tmp"
        assert env["SSL_CERT_FILE"] == "/etc/ssl/certs/ca-bundle.crt"
        assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
        labels = config["Labels"]
        assert labels["org.opencontainers.image.created"] == "2026-07-05T12:34:56Z"
        assert labels["org.opencontainers.image.title"] == f"ktrdr-{name}"
        assert labels["org.opencontainers.image.revision"] == "0123456789abcdef0123456789abcdef01234567"
        cuda = role["torch"] == "cuda"
        assert ("NVIDIA_VISIBLE_DEVICES" in env) == cuda
        if cuda:
            assert env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
            assert "/usr/lib64" in env["LD_LIBRARY_PATH"].split(":")


def test_root_ownership_comes_from_perms_not_chown() -> None:
    result = evaluated("x86_64-linux")
    assert result["passwdLines"] == ["ktrdr:x:1000:1000:ktrdr:/home/ktrdr:/sbin/nologin"]
    assert result["groupLines"] == ["ktrdr:x:1000:"]
    tmp, owned = result["perms"]
    assert (tmp["regex"], tmp["mode"]) == ("/tmp$", "1777")
    assert (owned["uid"], owned["gid"], owned["mode"]) == (1000, 1000, "0755")
    for directory in ("/home/ktrdr", "/app/data", "/app/data/models"):
        assert owned["regex"].rstrip("$").strip("()").split("|").count(directory) == 1


def test_editable_dev_set_resolves_everything_with_the_build_system() -> None:
    result = evaluated("x86_64-linux")
    assert result["editable"]["editableRoot"] == "$REPO_ROOT"
    packages = set(result["editable"]["packages"])
    assert {"hatchling", "ruff", "mypy", "pytest", "torch", "asyncpg"} <= packages
    assert result["buildSystemHasHatchling"] is True
    # hatchling's editable build imports `editables`; the editable ktrdr builds from the filtered source.
    assert {"hatchling", "editables"} <= set(result["editable"]["buildInputs"])
    assert result["editable"]["src"] is True
    assert result["appSource"]["isStorePath"] is True


# --- the real flake, lib-level, with its inputs overridden by the local snapshots ----------------


def flake_eval(apply: str, attr: str = ".#lib") -> Any:
    inputs = nix_inputs()
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "flake.nix", "flake.lock", "nix/project.nix"],
        cwd=REPO,
        capture_output=True,
    )
    if tracked.returncode != 0:
        pytest.skip("the flake's files are not tracked by git (a git+file flake sees tracked files only)")
    overrides = []
    for name, path in {
        "nixpkgs": "nixpkgs-lib",
        "pyproject-nix": "pyproject-nix",
        "uv2nix": "uv2nix",
        "pyproject-build-systems": "pyproject-build-systems",
        "nix2container": "nix2container",
    }.items():
        overrides += ["--override-input", name, f"path:{inputs / path}"]
    proc = subprocess.run(
        ["nix", *NIX_FLAGS, "eval", "--json", attr, "--apply", apply, *overrides, "--no-write-lock-file"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_real_flake_wires_the_role_table_and_overlays() -> None:
    result = flake_eval(
        "lib: { systems = lib.systems; roles = builtins.attrNames lib.roles.roles; "
        "deps = lib.python.workspace.deps.all; "
        'overlays = map (v: builtins.isFunction (lib.python.overlayFor v)) [ "none" "cpu" "cuda" ]; '
        "created = lib.imageConfig.created; runtime = lib.python.runtimePythonArgs; "
        'strips = map lib.strip.strips [ "sqlalchemy" "torch" "nvidia-nccl-cu13" "cuda-bindings" '
        '"triton" ]; }'
    )
    assert result["systems"] == ["x86_64-linux", "aarch64-linux"]
    assert result["roles"] == ["backend", "worker-cpu", "worker-gpu"]
    assert result["deps"] == {"ktrdr": ["ml", "postgres", "report", "dev", "test"]}
    assert result["overlays"] == [True, True, True]
    assert result["runtime"] == RUNTIME_PYTHON_ARGS
    assert result["strips"] == [True, True, False, False, False]
    assert len(result["created"]) == len("2026-07-05T12:34:56Z") and result["created"].endswith("Z")


def test_flake_lock_narhashes_match_the_snapshots() -> None:
    inputs = nix_inputs()
    lock = json.loads((REPO / "flake.lock").read_text())
    for name in ("pyproject-nix", "uv2nix", "pyproject-build-systems", "nix2container"):
        proc = subprocess.run(
            ["nix", *NIX_FLAGS, "hash", "path", str(inputs / name)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == lock["nodes"][name]["locked"]["narHash"], name


def test_nix_resolution_agrees_with_the_lock_budget_resolver(system: str) -> None:
    from .test_size_budget import closure

    arch = ARCHES[system]
    for name, image in evaluated(system)["images"].items():
        if system in image["platforms"]:
            assert set(image["packages"]) == set(closure(name, arch).packages), (name, system)


# --- the apps (nix/apps.nix): `nix run .#default` and `nix run .#demo` ------------------------------

APP_SYSTEMS = ["x86_64-linux", "aarch64-linux", "aarch64-darwin", "x86_64-darwin"]
ROLES = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ktrdr"]["images"]


@cache
def apps_of(system: str) -> dict[str, Any]:
    """The apps and checks nix/system.nix builds for ``system``, with the environment and demo
    nix/apps.nix makes from the dev shells' sets (harness.nix: the paths must agree)."""
    return nix_eval(f"({harness(nix_inputs(), system)}).apps")


@pytest.mark.parametrize("system", APP_SYSTEMS)
def test_the_apps_run_the_cli_and_the_demo_from_one_environment(system: str) -> None:
    result = apps_of(system)
    apps, env, demo = result["apps"], result["env"], result["demo"]
    # uv.lock has no torch wheel for Intel macOS: the CLI only, no demo (nix/apps.nix).
    assert set(apps) == ({"default"} if system == "x86_64-darwin" else {"default", "demo"})
    for app in apps.values():
        assert app["type"] == "app" and set(app) == {"type", "program", "meta"}
        assert app["meta"]["description"]  # recent `nix flake check` warns about an app without one
    # The paths are those of the environment made from the dev shells' sets: nix/system.nix wires
    # those sets (a set on another interpreter or stripped is another store path).
    assert apps["default"]["program"] == f"{env['path']}/bin/ktrdr"
    if "demo" in apps:
        assert apps["demo"]["program"] == f"{demo['path']}/bin/{demo['name']}"
        assert demo["runtimeInputs"] == [env["path"]]
        assert demo["text"].split() == ["exec", "ktrdr", "demo", '"$@"']
    if system.endswith("-linux"):
        # `nix flake check` runs the demo program itself in the sandbox.
        script = result["checks"]["demo"]["script"]
        assert f"{apps['demo']['program']} >demo.log" in script
        assert all(f'"{line}"' in script for line in ("sharpe_ratio", "deepest drawdown", "demo finished"))


@pytest.mark.parametrize("system", APP_SYSTEMS)
def test_the_apps_environment_is_on_the_stock_python_unstripped_from_wheels(system: str) -> None:
    """Like the dev shells': the binary cache's python313, so a first `nix run` compiles no CPython,
    and every third-party package a wheel (none built from an sdist, on macOS neither)."""
    env = apps_of(system)["env"]
    assert env["trimmedPython"] is False and env["stripped"] is False
    formats = dict(env["formats"])
    assert formats.pop("ktrdr") == "local"
    assert set(formats.values()) == {"wheel"}, [p for p, f in formats.items() if f != "wheel"]


@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-linux", "aarch64-darwin"])
def test_the_apps_environment_is_worker_cpu_with_the_report_extra(system: str) -> None:
    """The worker-cpu role's extras (CPU torch, nothing CUDA) plus `report`: the demo's chart and
    `ktrdr ops report`; and the lock's own resolver agrees on what that is. On macOS the torch is
    the lock's own (PyPI's macOS torch is the CPU build)."""
    from bench.lock_sizes import resolve

    role = ROLES["worker-cpu"]
    env = apps_of(system)["env"]
    assert role["torch"] == "cpu"
    assert env["spec"] == {"ktrdr": [*role["extras"], "report"]}
    linux = system.endswith("-linux")
    assert env["torchVersion"] == locked_torch_version() + ("+cpu" if linux else "")
    packages = set(env["packages"])
    assert {"torch", "numpy", "pandas", "plotly", "plotille"} <= packages
    assert not [p for p in packages if is_cuda_only(p)]
    if linux:
        worker_cpu = set(evaluated(system)["images"]["worker-cpu"]["packages"])
        assert worker_cpu < packages and {"plotly", "plotille"} <= packages - worker_cpu
        spec = {"extras": [*role["extras"], "report"], "torch": "cpu"}
        assert packages == set(resolve(spec, ARCHES[system]).packages)


def test_on_intel_macos_the_cli_is_the_backends_extras_with_the_report_extra() -> None:
    env = apps_of("x86_64-darwin")["env"]
    assert env["spec"] == {"ktrdr": [*ROLES["backend"]["extras"], "report"]}
    assert env["torchVersion"] is None
    assert not {"torch", "numpy", "pandas"} & set(env["packages"])
    assert {"plotly", "plotille", "httpx"} <= set(env["packages"])
