# Everything about the project that needs only nixpkgs' lib: the role table, the torch overlays, the
# Python overlays, the image layer plan and the OCI image configs. Exposed as the flake's `lib`
# output, and evaluated by tests/nix/ without nixpkgs.
{
  lib,
  pyproject-nix,
  uv2nix,
  buildSystemsOverlay,
  workspaceRoot,
  sourceInfo ? { },
}:
let
  pyproject = lib.importTOML (workspaceRoot + "/pyproject.toml");
  roles = import ./roles.nix { inherit lib pyproject; };
  torch = import ./torch.nix { inherit lib; };
  prune = import ./prune.nix { inherit lib; };
  gccRuntime = import ./gcc-runtime.nix { inherit lib; };
  strip = import ./strip.nix {
    inherit (torch) isCudaOnly;
    inherit lib;
    packageNames = map (package: package.name) (lib.importTOML (workspaceRoot + "/uv.lock")).package;
  };
  python = import ./python.nix {
    inherit
      lib
      uv2nix
      buildSystemsOverlay
      workspaceRoot
      torch
      prune
      gccRuntime
      strip
      ;
  };
  imageConfig = import ./image-config.nix {
    inherit lib roles pyproject sourceInfo;
  };
  layerPlan = import ./layer-plan.nix {
    inherit lib;
    inherit (pyproject-nix.build.lib.resolvers) resolveCyclic;
    inherit (torch) isCudaOnly;
    inherit (roles) specOf;
  };
in
{
  inherit
    pyproject-nix
    pyproject
    roles
    torch
    prune
    gccRuntime
    strip
    python
    imageConfig
    layerPlan
    ;
  inherit (roles) systems;
  # The images' systems, and macOS for the dev shells and the apps (nix/shells.nix, nix/apps.nix).
  devSystems = roles.systems ++ [
    "aarch64-darwin"
    "x86_64-darwin"
  ];
  # Whether uv.lock's torch has a wheel for `system`: it has for Linux x86_64/aarch64 and macOS
  # arm64 (and Windows), not for Intel macOS, where uv2nix would build torch from its sdist. There
  # the dev shell and the CLI app are the backend's, and there is no demo.
  hasTorchWheel = system: system != "x86_64-darwin";
}
