# The Python package set from uv.lock (uv2nix + pyproject.nix): one workspace, wheels preferred,
# the build-system overlay before the project overlay (the lock's versions win), the project's
# fixups, a torch variant, the prune table (prune.nix), and for the images gcc's runtime cut down to
# what the wheels link (gcc-runtime.nix) and the strip hook turned back on for the non-CUDA wheels
# (strip.nix) last. Everything here needs only nixpkgs' lib; `mkPythonSets`
# takes pkgs to instantiate the sets on one trimmed python313 (`runtimePythonFor`).
#
# The interpreter: nixpkgs' python313 with cpython's own arguments (`runtimePythonArgs`) and a few
# attributes no argument covers (`runtimePythonAttrs`). Stock python313 already deletes Lib/test
# except test.support/libregrtest in its postInstall; the arguments also remove those, IDLE and
# turtledemo, the tkinter package (no _tkinter: x11Support is off by default) and the config-3.13-*
# directory (libpython3.13.a, Makefile) with python3-config, build without bluez (AF_BLUETOOTH),
# readline and gdbm; the attributes leave out the curses modules (so nothing links ncurses and its
# terminfo database), the -O/-OO bytecode, the C-API test modules, ensurepip's bundled pip,
# pydoc's topics and the C headers.
# Measured on a local CPython 3.13 after the same postInstall and `strip -S` (docs/nix.md,
# tools/runtime_closure.py, tar bytes): 79.7 MB -> 31.8 MB, and ncurses, readline, gdbm (5.4 MB) leave the
# closure.
# ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, zoneinfo (with tzdata), dbm.sqlite3 stay. The
# cost: an overridden CPython is not in the binary cache, so each architecture builds it from source
# once (minutes; Cachix serves it afterwards where CI pushes to one). The images' sets and the checks
# use it; the dev shells pass `python = pkgs.python313`, the binary cache's stock build, so a first
# `nix develop` compiles nothing (docs/nix.md has the numbers behind that choice).
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
  gccRuntime,
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

  # The composed extension for one torch variant ("none", "cpu", "cuda"): the dev shells' one, and the
  # images' one, which also strips (strip.nix). The dev shells keep uv2nix's dontStrip: their extra
  # wheels (ruff, mypy, zizmor, ta-lib...) were not replayed through strip + patchelf, and a few MB
  # on a developer's machine are not worth that risk.
  devOverlayFor =
    variant:
    lib.composeManyExtensions [
      buildSystemsOverlay
      projectOverlay
      fixups
      torch.overlays.${variant}
      prune.overlay
    ];

  overlayFor =
    variant:
    lib.composeManyExtensions [
      (devOverlayFor variant)
      gccRuntime.overlay
      strip.overlay
    ];

  # The editable ktrdr's source: only what hatchling reads to write the metadata and find the package
  # (pyproject.toml, the README it names, ktrdr/__init__.py), uv2nix's source-filtering pattern for
  # editables. The venv points at $REPO_ROOT for the code, so editing it rebuilds nothing; only a
  # change of these files does.
  editableSource = lib.cleanSourceWith {
    name = "ktrdr-editable-source";
    src = workspaceRoot;
    filter =
      path: _type:
      lib.elem (lib.removePrefix (toString workspaceRoot + "/") (toString path)) [
        "pyproject.toml"
        "README.md"
        "ktrdr"
        "ktrdr/__init__.py"
      ];
  };

  # Dev shells: ktrdr installed editable from the checkout. hatchling's editable build imports
  # `editables` (hatchling/builders/wheel.py, build_editable_detection; it is what hatchling's
  # get_requires_for_build_editable adds), which pyproject.nix does not ask for: add it, as uv2nix's
  # own editable checks do.
  editableFixups = final: prev: {
    ktrdr = prev.ktrdr.overrideAttrs (old: {
      src = editableSource;
      nativeBuildInputs = old.nativeBuildInputs ++ final.resolveBuildSystem { editables = [ ]; };
    });
  };

  editableOverlay = lib.composeExtensions (workspace.mkEditablePyprojectOverlay {
    root = "$REPO_ROOT";
  }) editableFixups;

  # Arguments of nixpkgs' cpython/default.nix, read at nixpkgs 007088359e7a (the pinned revision's
  # file could not be read here); tests/nix checks each name against that file's formal arguments.
  runtimePythonArgs = {
    stripConfig = true; # bin/python*-config, lib/python3.13/config-3.13-* (static libpython, Makefile)
    stripIdlelib = true; # bin/idle*, idlelib, turtledemo
    stripTests = true; # lib/python3.13/test (test.support, libregrtest) and */test{,s}
    stripTkinter = true; # lib/python3.13/tkinter
    # AF_BLUETOOTH sockets (bluez headers); the default is on for Linux in newer nixpkgs. A server never
    # opens one, and the build is from source anyway.
    bluezSupport = false;
    # The readline module (line editing in an interactive `python`, pdb); it links readline and ncurses.
    withReadline = false;
    # dbm.gnu and dbm.ndbm (gdbm); dbm.sqlite3, 3.13's default for dbm and shelve, stays.
    withGdbm = false;
  };

  # What no argument of cpython's does, as derivation attributes: configure's own switch for a stdlib
  # module (`py_cv_module_<name>=n/a`, as nixpkgs sets for _scproxy) leaves out curses, which would
  # link ncurses (and with it the whole terminfo database) into every image; the bytecode is kept at
  # the level the images run (rebuildBytecode compiles the stdlib at 0, -O and -OO: 25 MB of the
  # latter two that an interpreter started without -O never reads); CPython's C-API test modules,
  # ensurepip's bundled pip wheel (venv without --without-pip), pydoc's topic texts (help("if") in a
  # REPL) and the C headers (every package of the lock is a wheel, tier 2 checks it: nothing is
  # compiled against this interpreter) go.
  runtimePythonAttrs = old: {
    configureFlags = (old.configureFlags or [ ]) ++ [
      "py_cv_module__curses=n/a"
      "py_cv_module__curses_panel=n/a"
    ];
    postInstall = (old.postInstall or "") + ''
      find $out -name '*.opt-1.pyc' -delete
      find $out -name '*.opt-2.pyc' -delete
      rm -f $out/lib/python*/lib-dynload/{_test,_xxtestfuzz,xxlimited,xxsubtype,_ctypes_test}*.so
      rm -rf $out/lib/python*/ensurepip/_bundled $out/lib/python*/pydoc_data $out/include
    '';
  };

  # The dev shells' interpreter: the binary cache's stock python313, so a first `nix develop`
  # compiles no CPython (docs/nix.md has the numbers).
  devPythonFor = pkgs: pkgs.python313;

  # `self` must be the final interpreter itself: cpython's passthru (interpreter, pkgs) is built from
  # it. Its passthru's pythonOnBuildForHost, which pyproject.nix's hooks install wheels with, is
  # nixpkgs' `override` of python313 with the same arguments, which knows nothing of
  # runtimePythonAttrs: for a native build it is set to the final interpreter too, so that one
  # CPython is built, not two, and no package records the other one's path.
  runtimePythonFor =
    pkgs:
    let
      native = pkgs.stdenv.buildPlatform.system == pkgs.stdenv.hostPlatform.system;
      python = (pkgs.python313.override (runtimePythonArgs // { self = python; })).overrideAttrs (
        old:
        runtimePythonAttrs old
        // {
          passthru = (old.passthru or { }) // lib.optionalAttrs native { pythonOnBuildForHost = python; };
        }
      );
    in
    python;

  # One package set per torch variant, all from the same base set on one interpreter: the images'
  # (the trimmed runtime python313: nixpkgs' python3 may be newer than uv.lock's requires-python
  # allows, and overlayFor) unless told otherwise.
  mkPythonSets =
    {
      pkgs,
      pyproject-nix,
      python ? runtimePythonFor pkgs,
      overlay ? overlayFor,
    }:
    let
      base = pkgs.callPackage pyproject-nix.build.packages { inherit python; };
    in
    lib.genAttrs [ "none" "cpu" "cuda" ] (variant: base.overrideScope (overlay variant));

  # The dev shells' sets.
  mkDevPythonSets =
    { pkgs, pyproject-nix }:
    mkPythonSets {
      inherit pkgs pyproject-nix;
      python = devPythonFor pkgs;
      overlay = devOverlayFor;
    };
in
{
  inherit
    workspace
    projectOverlay
    fixups
    overlayFor
    devOverlayFor
    editableFixups
    editableOverlay
    appSource
    editableSource
    ;

  inherit
    runtimePythonArgs
    runtimePythonAttrs
    runtimePythonFor
    devPythonFor
    ;

  inherit mkPythonSets mkDevPythonSets;
}
