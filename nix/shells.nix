# Dev shells: ktrdr installed editable from the checkout ($REPO_ROOT) into a venv built from uv.lock,
# with uv told to use that venv's Python and never to sync or download one.
#   default  all extras and groups (ml, postgres, dev: ruff, mypy, pytest...), plus uv and nixfmt
#   backend  the backend alone (no numpy/pandas/torch) with the lean test tools
# Both run on the images' trimmed python313 (nix/python.nix), not the binary cache's stock one: the
# shells then resolve the same store paths as the images and miss the same stdlib parts (test, IDLE,
# tkinter), so what works here works there. The cost is one CPython source build per machine, saved
# where the project's binary cache (Cachix) is configured.
{
  pkgs,
  project,
  pythonSets,
}:
let
  inherit (project.python) workspace editableOverlay;

  mkShell =
    {
      name,
      set,
      spec,
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
      shellHook = ''
        unset PYTHONPATH
        export REPO_ROOT=$(git rev-parse --show-toplevel)
      '';
    };
in
{
  # The CPU torch: a dev machine rarely has the CUDA driver, and the CPU wheel is a fifth of the size.
  default = mkShell {
    name = "default";
    set = pythonSets.cpu;
    spec = workspace.deps.all;
  };
  backend = mkShell {
    name = "backend";
    set = pythonSets.none;
    spec = {
      ktrdr = [ "test" ];
    };
  };
}
