"""Measures the images' runtime closure part by part (everything but the Python packages) and
writes bench/runtime-closure.json, which bench.estimate adds to each image's estimate.

No nixpkgs build runs here, so each part of the interpreter's closure is measured on the closest real
files this machine can get:

* the interpreter and its standard library: a local CPython 3.13 install (``--python-prefix``, e.g.
  pyenv's source build, configured ``--enable-shared`` like nixpkgs' build), copied and then treated
  as nixpkgs' cpython derivation treats its own install: its postInstall (Lib/test cut to
  ``support``, ``libregrtest`` and ``regrtest.py``; the bytecode deleted and compiled again), the
  strip hook's ``strip -S -p`` on every ELF file, no ``_tkinter`` (nixpkgs builds without X11); once
  as stock python313 (bytecode at three optimisation levels) and once as the images' interpreter
  (nix/python.nix: cpython's strip arguments, no readline, gdbm or curses modules, bytecode at the
  level the images run);
* every library it links and every other store path of the base layer: Debian's packages of the
  same libraries (``--debs``: the folder ``apt-get download`` filled), without their documentation.
  Debian's upstream versions are close to, not the same as, the pinned nixpkgs' (the file names
  say which; the JSON records them), and Debian splits some outputs otherwise than nixpkgs does
  (each part's ``note`` says how it was counted).

Every part records its files' bytes and the bytes of a tar layer of them (bench.sizes.tar_bytes).

    apt-get download libc6 libgcc-s1 libssl3t64 ...   # the packages PARTS names, into DEBS
    uv run python -m tools.runtime_closure --debs DEBS --python-prefix ~/.pyenv/versions/3.13.0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.sizes import tar_bytes

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "runtime-closure.json"
# Never in a runtime output of nixpkgs (separate doc/man/info outputs, or not built at all).
DOCS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/lintian", "usr/share/bug")


@dataclass(frozen=True)
class Part:
    name: str
    debs: tuple[str, ...]  # Debian package names
    # Which images' closures hold it: "interpreter" (every image, through stock python313),
    # "stock-only" (python313's, which the images' interpreter leaves out), "base" (every image,
    # not through the interpreter).
    where: str
    note: str
    only: tuple[str, ...] = ()  # count only these paths of the packages (prefixes), when set


PARTS = (
    Part(
        "glibc",
        ("libc6", "libgcc-s1", "libc-l10n"),
        "interpreter",
        "libc6; libgcc_s.so.1, which nixpkgs' glibc copies into its lib/; and the message catalogs "
        "(Debian's libc-l10n), which nixpkgs' glibc, built with gettext, installs into its output",
    ),
    Part(
        "glibc-locale",
        ("libc-bin",),
        "interpreter",
        "the C.UTF-8 locale, which nixpkgs' glibc compiles into its lib/locale",
        only=("usr/lib/locale/C.utf8",),
    ),
    Part(
        "libidn2",
        ("libidn2-0", "libunistring5"),
        "interpreter",
        "libidn2 and libunistring: nixpkgs' glibc loads libidn2 by its store path",
    ),
    Part("openssl", ("libssl3t64",), "interpreter", "libssl, libcrypto, engines and providers"),
    Part("sqlite", ("libsqlite3-0",), "interpreter", "libsqlite3"),
    Part("libffi", ("libffi8",), "interpreter", "libffi"),
    Part("zlib", ("zlib1g",), "interpreter", "libz"),
    Part("xz", ("liblzma5",), "interpreter", "liblzma"),
    Part("bzip2", ("libbz2-1.0",), "interpreter", "libbz2"),
    Part("expat", ("libexpat1",), "interpreter", "libexpat"),
    Part("mpdecimal", ("libmpdec4",), "interpreter", "libmpdec"),
    Part("libxcrypt", ("libcrypt1",), "interpreter", "libcrypt"),
    Part(
        "bash",
        ("bash",),
        "interpreter",
        "bash's binary only: subprocess's /bin/sh is patched to it (cpython's postPatch)",
        only=("usr/bin/bash",),
    ),
    Part("mailcap", ("media-types",), "interpreter", "/etc/mime.types, which mimetypes reads"),
    Part(
        "ncurses",
        ("libncursesw6", "libtinfo6", "ncurses-base", "ncurses-term"),
        "stock-only",
        "the libraries and the whole terminfo database (nixpkgs' ncurses output holds both; its aliases "
        "are symlinks, as Debian's are); linked by the _curses modules and by readline",
    ),
    Part("readline", ("libreadline8t64",), "stock-only", "libreadline (the readline module)"),
    Part(
        "gdbm",
        ("libgdbm6t64", "libgdbm-compat4t64"),
        "stock-only",
        "libgdbm and libgdbm_compat (dbm.gnu, dbm.ndbm)",
    ),
    Part(
        "tzdata",
        ("tzdata", "tzdata-legacy"),
        "interpreter",
        "zoneinfo with right/ (nixpkgs' tzdata installs the leap-second zones too; Debian puts them in "
        "tzdata-legacy); cpython's --with-tzpath points zoneinfo at it. Debian builds the slim form, "
        "nixpkgs the fat one: this undercounts it",
    ),
    Part(
        "gcc-runtime",
        ("libstdc++6", "libgomp1"),
        "base",
        "libstdc++ and libgomp, the two files nix/gcc-runtime.nix copies out of gcc's lib output for the "
        "wheels (greenlet in every image, numpy, pandas and torch in the workers)",
        only=("usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.33", "usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0"),
    ),
    Part("tini", ("tini",), "base", "the init process of every image"),
)


def run(argv: list[str], **kwargs: Any) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)


def tree_tar(root: Path) -> dict[str, int]:
    """Files, bytes and tar bytes of ``root`` (symlinks and directories are tar entries too)."""
    sizes: list[int] = []
    others = 1
    for dirpath, dirnames, files in os.walk(root):
        others += len(dirnames)
        for name in files:
            path = Path(dirpath, name)
            if path.is_symlink():
                others += 1
            else:
                sizes.append(path.stat().st_size)
    return {"files": len(sizes), "bytes": sum(sizes), "tar_bytes": tar_bytes(sizes, others)}


def deb_file(debs: Path, package: str) -> Path:
    found = sorted(debs.glob(f"{package}_*_*.deb"))
    if not found:
        raise SystemExit(f"{debs} has no {package}_*.deb: apt-get download {package}")
    return found[-1]


def measure_part(part: Part, debs: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ktrdr-part-") as tmp:
        root = Path(tmp)
        files = [deb_file(debs, name) for name in part.debs]
        for deb in files:
            run(["dpkg-deb", "-x", str(deb), str(root)])
        for doc in DOCS:
            shutil.rmtree(root / doc, ignore_errors=True)
        if part.only:
            keep = Path(tmp + "-keep")
            for rel in part.only:
                (keep / rel).parent.mkdir(parents=True, exist_ok=True)
                if (root / rel).is_dir():
                    shutil.copytree(root / rel, keep / rel, symlinks=True)
                else:
                    shutil.copy2(root / rel, keep / rel)
            sizes = tree_tar(keep)
            shutil.rmtree(keep)
        else:
            sizes = tree_tar(root)
    return {**sizes, "where": part.where, "from": [deb.name for deb in files], "note": part.note}


def ca_bundle(debs: Path) -> dict[str, Any]:
    """The CA bundle nixpkgs' cacert writes: every Mozilla certificate in one PEM file."""
    with tempfile.TemporaryDirectory(prefix="ktrdr-ca-") as tmp:
        deb = deb_file(debs, "ca-certificates")
        run(["dpkg-deb", "-x", str(deb), tmp])
        size = sum(p.stat().st_size for p in Path(tmp).glob("usr/share/ca-certificates/mozilla/*.crt"))
    return {
        "files": 1,
        "bytes": size,
        "tar_bytes": tar_bytes([size], 4),
        "where": "base",
        "from": [deb.name],
        "note": "one PEM bundle of Debian's Mozilla certificates (dockerTools.caCertificates' ca-bundle.crt)",
    }


# --- the interpreter ---------------------------------------------------------------------------


def copy_prefix(prefix: Path, dest: Path) -> Path:
    """bin/, lib/ (libpython and the standard library), include/ and share/ of a CPython install."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for sub in ("bin", "lib", "include", "share"):
        if (prefix / sub).exists():
            shutil.copytree(prefix / sub, dest / sub, symlinks=True)
    stdlib = dest / "lib" / f"python{version}"
    shutil.rmtree(stdlib / "site-packages")
    (stdlib / "site-packages").mkdir()
    for extra in ("pip", "pip3", f"pip{version}"):
        (dest / "bin" / extra).unlink(missing_ok=True)
    return stdlib


def nixpkgs_post_install(stdlib: Path) -> None:
    """What stock python313's postInstall does to the install: Lib/test cut to what other packages
    import, no bytecode of make install's (compiled again below)."""
    for item in (stdlib / "test").iterdir():
        if item.name not in ("support", "libregrtest", "regrtest.py", "__init__.py"):
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    for cache in list(stdlib.parent.parent.rglob("__pycache__")):
        shutil.rmtree(cache)
    for tk in stdlib.glob("lib-dynload/_tkinter*"):
        tk.unlink()  # nixpkgs builds without X11 (x11Support = false)


# What nix/python.nix's runtimePythonAttrs removes from lib-dynload (CPython's C-API test modules).
TEST_MODULES = ("_test", "_xxtestfuzz", "xxlimited", "xxsubtype", "_ctypes_test")


def runtime_trim(stdlib: Path) -> None:
    """nix/python.nix's arguments (strip{Config,Idlelib,Tests,Tkinter}, withReadline = false,
    withGdbm = false) and attributes (no curses modules, no C-API test modules, no ensurepip wheel,
    no pydoc topics, no C headers)."""
    prefix = stdlib.parents[1]
    for path in [
        *stdlib.glob("config-*"),
        *prefix.glob("bin/python*-config"),
        *prefix.glob("bin/idle*"),
        stdlib / "idlelib",
        stdlib / "turtledemo",
        stdlib / "tkinter",
        stdlib / "test",
        *stdlib.glob("*/test"),
        *stdlib.glob("*/tests"),
        *stdlib.glob("lib-dynload/_curses*"),
        *stdlib.glob("lib-dynload/readline*"),
        *stdlib.glob("lib-dynload/_gdbm*"),
        *stdlib.glob("lib-dynload/_dbm*"),
        *(p for name in TEST_MODULES for p in stdlib.glob(f"lib-dynload/{name}*.so")),
        stdlib / "ensurepip" / "_bundled",
        stdlib / "pydoc_data",
        prefix / "include",
    ]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def compile_bytecode(python: Path, stdlib: Path, levels: list[int]) -> None:
    """nixpkgs' rebuildBytecode: compileall over the install, once per optimisation level."""
    for level in levels:
        run(
            [
                str(python),
                *(["-" + "O" * level] if level else []),
                "-m",
                "compileall",
                "-q",
                "-f",
                str(stdlib),
            ]
        )


def strip_elf(root: Path) -> None:
    """The strip hook's default: strip -S -p on every ELF file and static archive under lib/ and bin/
    (the hook runs strip on every file there and ignores the failures of the others)."""
    for sub in ("lib", "bin"):
        for path in (root / sub).rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            with path.open("rb") as fh:
                magic = fh.read(8)
            if magic[:4] == b"\x7fELF" or magic == b"!<arch>\n":
                subprocess.run(["strip", "-S", "-p", str(path)], check=False, capture_output=True)


def bytecode_bytes(stdlib: Path) -> dict[str, int]:
    by_level = {"0": 0, "1": 0, "2": 0}
    for pyc in stdlib.rglob("*.pyc"):
        level = "1" if ".opt-1." in pyc.name else "2" if ".opt-2." in pyc.name else "0"
        by_level[level] += pyc.stat().st_size
    return by_level


def measure_interpreter(prefix: Path, runtime: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ktrdr-python-") as tmp:
        dest = Path(tmp) / "python3"
        stdlib = copy_prefix(prefix, dest)
        nixpkgs_post_install(stdlib)
        if runtime:
            runtime_trim(stdlib)
        strip_elf(dest)
        python = prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
        compile_bytecode(python, stdlib, [0] if runtime else [0, 1, 2])
        sizes = tree_tar(dest)
        parts = {
            "lib-dynload": tree_tar(stdlib / "lib-dynload")["bytes"],
            "libpython": sum(p.stat().st_size for p in dest.glob("lib/libpython*") if not p.is_symlink()),
            "include": tree_tar(dest / "include")["bytes"] if (dest / "include").exists() else 0,
            "sources": sum(p.stat().st_size for p in stdlib.rglob("*.py")),
            "bytecode_by_level": bytecode_bytes(stdlib),
        }
    return {**sizes, **parts}


# nix/python.nix's interpreter settings, evaluated without nixpkgs (they need no lib); the tests
# evaluate the same expression.
SETTINGS_EXPR = (
    "let python = import ./nix/python.nix { lib = { }; uv2nix = { }; buildSystemsOverlay = null; "
    "workspaceRoot = ./.; torch = { }; prune = { }; gccRuntime = { }; strip = { }; }; "
    "in { args = python.runtimePythonArgs; attrs = python.runtimePythonAttrs { }; }"
)


def interpreter_settings() -> str:
    """The sha256 of nix/python.nix's runtimePythonArgs and runtimePythonAttrs as Nix evaluates them
    (comments and layout aside): the interpreter was measured with these."""
    out = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", SETTINGS_EXPR],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    canonical = json.dumps(json.loads(out), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, required=True)
    parser.add_argument("--python-prefix", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    version = subprocess.run(
        [
            str(args.python_prefix / "bin" / "python3"),
            "-c",
            "import platform; print(platform.python_version())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    table = {
        "comment": (
            "Written by tools/runtime_closure.py (see its docstring); read by bench/estimate.py. Bytes of "
            "each store path of the images' base layer other than the Python packages, measured on the "
            "closest real files (Debian's packages of the libraries, a local CPython build). where: "
            "interpreter = in stock python313's closure and the images' interpreter's; stock-only = in "
            "stock python313's only (nix/python.nix leaves it out); base = every image, beside the "
            "interpreter. python.settings_sha256: nix/python.nix's interpreter settings measured with "
            "(tools.runtime_closure.interpreter_settings)."
        ),
        "python": {
            "from": f"CPython {version} installed at {args.python_prefix.name} (a local source build)",
            "settings_sha256": interpreter_settings(),
            "stock": measure_interpreter(args.python_prefix, runtime=False),
            "runtime": measure_interpreter(args.python_prefix, runtime=True),
        },
        "parts": {part.name: measure_part(part, args.debs) for part in PARTS}
        | {"ca-certificates": ca_bundle(args.debs)},
    }
    args.out.write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
