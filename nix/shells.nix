# Dev shells: ktrdr installed editable from the checkout ($REPO_ROOT) into a venv built from uv.lock,
# with uv told to use that venv's Python and never to sync or download one.
#   default  all extras and groups (ml, postgres, dev: ruff, mypy, pytest...), plus uv and nixfmt;
#            on x86_64-darwin the backend shell instead, saying so: the lock's torch has macOS wheels
#            for arm64 only, and uv2nix would fall back to building torch from its sdist
#   backend  the backend alone (no numpy/pandas/torch) with the lean test tools
# In the shell, the tools are the venv's: call `ktrdr`, `pytest`, `ruff`, `mypy` directly. `uv run`
# would create and use its own ./.venv instead (uv2nix's docs say not to use it here); the hook warns
# when a ./.venv is present.
# The sets come from system.nix, on the binary cache's stock python313 rather than the images'
# trimmed one, so a first `nix develop` compiles nothing (docs/nix.md: the numbers).
{
  lib,
  pkgs,
  project,
  pythonSets,
}:
let
  inherit (project.python) workspace editableOverlay;
  platform = pkgs.stdenv.hostPlatform;

  # Outside a git checkout (a source tarball) git prints nothing and fails: the working directory is
  # the root then, so start the shell there.
  hookFor = notice: ''
    unset PYTHONPATH
    REPO_ROOT=$(git rev-parse --show-toplevel 2>/dev/null) || REPO_ROOT=$PWD
    export REPO_ROOT
    if [ -e "$REPO_ROOT/.venv" ]; then
      echo "ktrdr: $REPO_ROOT/.venv exists, but this shell's Python environment is the Nix one." >&2
      echo "ktrdr: call ktrdr, pytest, ruff, mypy directly; 'uv run' would use .venv instead." >&2
    fi
  '' + lib.optionalString (notice != "") "echo ${lib.escapeShellArg "ktrdr: ${notice}"} >&2\n";

  mkShell =
    {
      name,
      set,
      spec,
      notice ? "",
    }:
    let
      editableSet = set.overrideScope editableOverlay;
      venv = editableSet.mkVirtualEnv "ktrdr-${name}-dev-env" spec;
    in
    pkgs.mkShell {
      packages = [
        venv
        pkgs.uv
        pkgs.nixfmt
      ];
      env = {
        UV_NO_SYNC = "1";
        UV_PYTHON = editableSet.python.interpreter;
        UV_PYTHON_DOWNLOADS = "never";
      };
      shellHook = hookFor notice;
    };

  backend = {
    name = "backend";
    set = pythonSets.none;
    spec = {
      ktrdr = [ "test" ];
    };
  };
in
{
  backend = mkShell backend;
  default =
    if !project.hasTorchWheel platform.system then
      mkShell (
        backend
        // {
          notice = "torch has no wheel for x86_64 macOS in uv.lock: this is the backend shell, without ml.";
        }
      )
    else
      # The CPU torch: a dev machine rarely has the CUDA driver, and the CPU wheel is a fifth of the
      # size. On macOS (arm64) PyPI's torch is the CPU build.
      mkShell {
        name = "default";
        set = pythonSets.cpu;
        spec = workspace.deps.all;
      };
}
