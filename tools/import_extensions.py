"""Import every extension module it is given, and fail naming each one that does not load.

Arguments: ``MODULE PATH`` pairs, and ``--site DIR`` for every extension module under DIR (a file
named with this interpreter's ``EXT_SUFFIX`` or ``.abi3.so``, its module name its path under DIR; a
DIR that does not exist holds none, but ``--site`` arguments that hold none at all are an error). A
module whose import fails because another package it needs is not installed is loaded by the
dynamic linker instead (``ctypes.CDLL``): that still proves the file loads after strip and patchelf.

Standard library only, one file, run with the interpreter under test: bench.sizes and
tools.replay_fixup pass its text to ``python -c`` (with pairs), and each role's Nix checks
(nix/checks.nix) run it with the role's environment on the site-packages of the role's stripped
wheels (with ``--site``).
"""

from __future__ import annotations

import ctypes
import importlib
import sys
import sysconfig
from pathlib import Path


def modules_under(site: Path) -> list[tuple[str, str]]:
    """Module name and path of every extension module under ``site``."""
    suffixes = (str(sysconfig.get_config_var("EXT_SUFFIX")), ".abi3.so")
    found = []
    for path in sorted(site.rglob("*.so")) if site.is_dir() else []:
        suffix = next((s for s in suffixes if path.name.endswith(s)), None)
        if suffix and path.is_file():
            found.append((".".join(path.relative_to(site).parts)[: -len(suffix)], str(path)))
    return found


def load(module: str, path: str) -> str | None:
    """Import ``module`` (or load ``path`` when another package it needs is missing); the failure."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return f"{module}: {exc!r}"
        try:
            ctypes.CDLL(path)
        except OSError as os_error:
            return f"{module}: {os_error!r}"
    except Exception as exc:
        return f"{module}: {exc!r}"
    return None


def main(argv: list[str]) -> int:
    pairs: list[tuple[str, str]] = []
    sites: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--site":
            sites.append(next(args))
            pairs += modules_under(Path(sites[-1]))
        else:
            pairs.append((arg, next(args)))
    if sites and not pairs:
        print(f"no extension module under {' '.join(sites)}")
        return 1
    failed = [failure for module, path in pairs if (failure := load(module, path))]
    print(f"{len(pairs) - len(failed)} of {len(pairs)} extension modules imported or loaded")
    print("\n".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
