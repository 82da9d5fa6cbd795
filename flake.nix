{
  description = "ktrdr: neuro-fuzzy trading research system, delivered as three right-sized OCI images built from one uv.lock";

  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable";

    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    # nix2container keeps its own nixpkgs (locked from its flake.lock): its default.nix patches the
    # vendor tree of that nixpkgs' skopeo with a fixed patch and pins nix2container-bin's Go
    # vendorHash, both tested only against that pin. Following our nixpkgs could break the skopeo
    # build (push, copyToDockerDaemon) on any nixpkgs bump. Cost: a second nixpkgs for those tools.
    nix2container.url = "github:nlewo/nix2container";
  };

  # Wiring only: the logic lives in nix/. `lib` needs nothing but nixpkgs' lib, so it also
  # evaluates where nixpkgs itself cannot (see docs/nix.md).
  outputs =
    {
      self,
      nixpkgs,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems,
      nix2container,
    }:
    let
      inherit (nixpkgs) lib;

      project = import ./nix/project.nix {
        inherit lib pyproject-nix uv2nix;
        buildSystemsOverlay = pyproject-build-systems.overlays.wheel;
        workspaceRoot = ./.;
        sourceInfo = self.sourceInfo or self;
      };

      forSystems = lib.genAttrs project.systems;

      # Lazily per system: on macOS only devShells and apps are ever asked for.
      perSystem = lib.genAttrs project.devSystems (
        system:
        import ./nix/system.nix {
          inherit lib system project;
          pkgs = nixpkgs.legacyPackages.${system};
          n2c = nix2container.packages.${system};
          src = self;
        }
      );
    in
    {
      lib = project;
      packages = forSystems (system: perSystem.${system}.packages);
      devShells = lib.genAttrs project.devSystems (system: perSystem.${system}.devShells);
      apps = lib.genAttrs project.devSystems (system: perSystem.${system}.apps);
      checks = forSystems (system: perSystem.${system}.checks);
      formatter = forSystems (system: nixpkgs.legacyPackages.${system}.nixfmt);
    };
}
