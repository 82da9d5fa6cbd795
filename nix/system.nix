# Everything of one system: the Python sets and environments, the images, the dev shells, the apps
# and the checks. Called by flake.nix once per system of the role table, and for the dev shells and
# the apps of macOS (project.devSystems), where only `devShells` and `apps` are used.
# `lib` and `system` come from the flake rather than from pkgs, so the attribute names of these outputs
# are known without instantiating nixpkgs (Nix looks `.#lib...` up in packages.<system> first).
{
  lib,
  system,
  project,
  pkgs,
  n2c,
  src,
}:
let
  roles = project.roles.rolesFor system;

  pythonSets = project.python.mkPythonSets {
    inherit pkgs;
    inherit (project) pyproject-nix;
  };

  setOf = role: pythonSets.${role.torch};

  envs = lib.mapAttrs (
    name: role: (setOf role).mkVirtualEnv "ktrdr-${name}-env" (project.roles.specOf role)
  ) roles;

  # The backend's environment (its role's extras) plus the lean test tools (the `test` group), without
  # numpy/pandas/torch: what .ci/run's lean step installs.
  backendTestEnv = pythonSets.none.mkVirtualEnv "ktrdr-backend-test-env" {
    ktrdr = project.roles.roles.backend.extras ++ [ "test" ];
  };

  images = import ./images.nix {
    inherit
      lib
      pkgs
      project
      roles
      pythonSets
      envs
      ;
    nix2container = n2c.nix2container;
  };

  # The dev shells' and the apps' sets: the images' overlays but the strip one (devOverlayFor), on
  # the binary cache's stock python313 (devPythonFor), so a first `nix develop` or `nix run`
  # compiles no CPython (docs/nix.md).
  devPythonSets = project.python.mkDevPythonSets {
    inherit pkgs;
    inherit (project) pyproject-nix;
  };

  shells = import ./shells.nix {
    inherit lib pkgs project;
    pythonSets = devPythonSets;
  };

  run = import ./apps.nix {
    inherit lib system pkgs project;
    pythonSets = devPythonSets;
  };

  allChecks = import ./checks.nix {
    inherit
      lib
      pkgs
      project
      roles
      pythonSets
      envs
      images
      backendTestEnv
      src
      ;
  };
in
{
  packages =
    lib.mapAttrs' (name: env: lib.nameValuePair "${name}-env" env) envs
    // lib.mapAttrs' (name: image: lib.nameValuePair "${name}-image" image) images
    // {
      images = pkgs.linkFarm "ktrdr-images-${system}" (
        lib.mapAttrsToList (name: image: {
          name = "${name}.json";
          path = image;
        }) images
      );
      backend-test-env = backendTestEnv;
      inherit (n2c) skopeo-nix2container;
    }
    # Each role's checks; `nix flake check` builds only those that fit a stock runner (checks.nix).
    # Named from `roles`, so the names stay known without instantiating nixpkgs.
    // lib.mapAttrs' (name: _: lib.nameValuePair "${name}-checks" allChecks.perRole.${name}) roles;
  devShells = shells;
  inherit (run) apps;
  checks = allChecks.flake // run.checks;
}
