# The Python package set from uv.lock (uv2nix + pyproject.nix): one workspace, wheels preferred,
# the build-system overlay before the project overlay (the lock's versions win), the project's
# fixups, a torch variant, and the prune table (prune.nix) last. Everything here needs only nixpkgs' lib; `mkPythonSets`
# takes pkgs to instantiate the sets on python313.
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

  # One package set per torch variant, all from the same base set on python313 (the images' Python;
  # nixpkgs' python3 may be newer than uv.lock's requires-python allows).
  mkPythonSets =
    { pkgs, pyproject-nix }:
    let
      base = pkgs.callPackage pyproject-nix.build.packages { python = pkgs.python313; };
    in
    lib.genAttrs [ "none" "cpu" "cuda" ] (variant: base.overrideScope (overlayFor variant));
}
