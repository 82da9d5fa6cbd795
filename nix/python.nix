# The Python package set from uv.lock (uv2nix + pyproject.nix): one workspace, wheels preferred,
# the build-system overlay before the project overlay (the lock's versions win), the project's
# fixups, a torch variant, the prune table (prune.nix), and the strip hook turned back on for the
# non-CUDA wheels (strip.nix) last. Everything here needs only nixpkgs' lib; `mkPythonSets`
# takes pkgs to instantiate the sets on one trimmed python313 (`runtimePythonFor`).
#
# The interpreter: nixpkgs' python313 with cpython's own strip arguments (`runtimePythonArgs`). Stock
# python313 already deletes Lib/test except test.support/libregrtest in its postInstall; the arguments
# also remove those, IDLE and turtledemo, the tkinter package (no _tkinter: x11Support is off by
# default) and the config-3.13-* directory (libpython3.13.a, Makefile) with python3-config, and builds
# without bluez (AF_BLUETOOTH). Measured on a local CPython 3.13 lib after the same stock postInstall
# and `strip -S`: 79 -> 58 MB (docs/nix.md).
# ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, zoneinfo, readline stay. The cost: an overridden
# CPython is not in the binary cache, so each architecture builds it from source once (minutes;
# Cachix serves it afterwards where CI pushes to one). Every set, the images' and the dev shells',
# uses this one interpreter, so they share store paths.
#
# Bytecode: pyproject.nix's configure hook sets UV_COMPILE_BYTECODE=1 unless tool.uv.compile-bytecode
# is false (it is not), so every package is installed with its .pyc compiled in the store.
{
  lib,
  uv2nix,
  buildSystemsOverlay,
  workspaceRoot,
  torch,
  prune,
  strip,
}:
let
  workspace = uv2nix.lib.workspace.loadWorkspace { inherit workspaceRoot; };

  projectOverlay = workspace.mkPyprojectOverlay { sourcePreference = "wheel"; };

  # ktrdr builds from its own files only, so editing tests, docs or nix/ does not rebuild the app.
  # (Filtered per package, not on workspaceRoot, which would force import-from-derivation.
  # cleanSourceWith rather than lib.fileset, which needs Nix >= 2.14 to evaluate.)
  appSource = lib.cleanSourceWith {
    name = "ktrdr-source";
    src = workspaceRoot;
    filter =
      path: type:
      let
        rel = lib.removePrefix (toString workspaceRoot + "/") (toString path);
      in
      lib.elem rel [
        "pyproject.toml"
        "README.md"
      ]
      || (
        (rel == "ktrdr" || lib.hasPrefix "ktrdr/" rel)
        && baseNameOf rel != "__pycache__"
        && !lib.hasSuffix ".pyc" rel
      );
  };

  fixups = _final: prev: {
    ktrdr = prev.ktrdr.overrideAttrs (_old: {
      src = appSource;
    });
  };

  # The composed extension for one torch variant ("none", "cpu", "cuda").
  overlayFor =
    variant:
    lib.composeManyExtensions [
      buildSystemsOverlay
      projectOverlay
      fixups
      torch.overlays.${variant}
      prune.overlay
      strip.overlay
    ];

  # Dev shells: ktrdr installed editable from the checkout. hatchling's editable build imports
  # `editables` (hatchling/builders/wheel.py, build_editable_detection; it is what hatchling's
  # get_requires_for_build_editable adds), which pyproject.nix does not ask for: add it, as uv2nix's
  # own editable checks do. Built from the filtered source, so editing tests does not rebuild it.
  editableFixups = final: prev: {
    ktrdr = prev.ktrdr.overrideAttrs (old: {
      src = appSource;
      nativeBuildInputs = old.nativeBuildInputs ++ final.resolveBuildSystem { editables = [ ]; };
    });
  };

  editableOverlay = lib.composeExtensions (workspace.mkEditablePyprojectOverlay {
    root = "$REPO_ROOT";
  }) editableFixups;

  # Arguments of nixpkgs' cpython/default.nix; python3Minimal gets the same values from withMinimalDeps.
  runtimePythonArgs = {
    stripConfig = true; # bin/python*-config, lib/python3.13/config-3.13-* (static libpython, Makefile)
    stripIdlelib = true; # bin/idle*, idlelib, turtledemo
    stripTests = true; # lib/python3.13/test (test.support, libregrtest) and */test{,s}
    stripTkinter = true; # lib/python3.13/tkinter
    # AF_BLUETOOTH sockets (bluez headers); the default is on for Linux in newer nixpkgs. A server never
    # opens one, and the build is from source anyway.
    bluezSupport = false;
  };

  # `self` must be the overridden interpreter itself: cpython's passthru (interpreter, pkgs, the
  # spliced pythonOnBuildForHost that pyproject.nix's hooks install wheels with) is built from it.
  runtimePythonFor =
    pkgs:
    let
      python = pkgs.python313.override (runtimePythonArgs // { self = python; });
    in
    python;
in
{
  inherit
    workspace
    projectOverlay
    fixups
    overlayFor
    editableFixups
    editableOverlay
    appSource
    ;

  inherit runtimePythonArgs runtimePythonFor;

  # One package set per torch variant, all from the same base set on the one runtime interpreter
  # (python313: nixpkgs' python3 may be newer than uv.lock's requires-python allows).
  mkPythonSets =
    { pkgs, pyproject-nix }:
    let
      base = pkgs.callPackage pyproject-nix.build.packages { python = runtimePythonFor pkgs; };
    in
    lib.genAttrs [ "none" "cpu" "cuda" ] (variant: base.overrideScope (overlayFor variant));
}
