# The OCI images (nix2container), one per role of this system. Layers are chained so the three images
# share them and an app-only change touches only the top layer:
#   base     Python runtime closure, tini, CA certificates, fake NSS, the root skeleton with its perms
#   common   the backend's third-party packages (every image has them)
#   ml       numpy, pandas and torch's pure-Python dependencies (same store paths in both workers)
#   torch    the variant's torch (+ the CUDA libraries for worker-gpu)
#   image    the venv and ktrdr itself (the image's own layer)
# No shell, no coreutils, no package manager; ownership and modes come from `perms`, not chown.
{
  lib,
  pkgs,
  project,
  roles,
  pythonSets,
  envs,
  nix2container,
}:
let
  cfg = project.imageConfig;
  inherit (project.torch) isCudaOnly;
  python = pythonSets.none.python;

  rootfs = pkgs.runCommand "ktrdr-root" { } ''
    ${lib.concatMapStringsSep "\n" (dir: "mkdir -p $out/${dir}") cfg.rootDirs}
  '';

  nss = pkgs.dockerTools.fakeNss.override {
    extraPasswdLines = cfg.passwdLines;
    extraGroupLines = cfg.groupLines;
  };

  # Layers built from the same arguments are the same derivation, hence the same blobs in a registry.
  chain =
    defs:
    lib.foldl' (acc: def: acc ++ [ (nix2container.buildLayer (def // { layers = acc; })) ]) [ ] defs;

  namesOf = set: spec: project.pyproject-nix.build.lib.resolvers.resolveCyclic set spec;
  commonNames = lib.filter (n: n != "ktrdr") (namesOf pythonSets.none { ktrdr = [ ]; });
  mlNames = lib.filter (n: !(lib.elem n commonNames) && n != "ktrdr" && n != "torch" && !isCudaOnly n) (
    namesOf pythonSets.cpu { ktrdr = [ "ml" ]; }
  );
  pkgsOf = set: map (n: set.${n});

  baseDefs = [
    {
      deps = [
        python
        pkgs.tini
      ];
      copyToRoot = [
        rootfs
        nss
        pkgs.dockerTools.caCertificates
      ];
      perms = cfg.permsFor rootfs;
    }
    {
      deps = pkgsOf pythonSets.none commonNames;
      maxLayers = 8;
    }
  ];
  mlDefs = [
    {
      deps = pkgsOf pythonSets.none mlNames;
      maxLayers = 6;
    }
  ];

  torchLayerDef =
    role:
    let
      set = pythonSets.${role.torch};
      names = lib.filter (n: n == "torch" || isCudaOnly n) (namesOf set (project.roles.specOf role));
    in
    {
      deps = pkgsOf set names;
      # One layer per big wheel (torch, cudnn, cublas, nccl...): a torch bump re-pushes only torch.
      maxLayers = 24;
    };

  layersFor =
    role: chain (baseDefs ++ lib.optionals (role.torch != "none") (mlDefs ++ [ (torchLayerDef role) ]));

  imageFor =
    name: role:
    let
      venv = envs.${name};
    in
    nix2container.buildImage {
      name = "ktrdr-${name}";
      layers = layersFor role;
      inherit (cfg) created;
      config = cfg.configFor {
        inherit name venv;
        tini = pkgs.tini;
        driverLibDirs = project.torch.driverLibDirs pkgs.stdenv.hostPlatform.parsed.cpu.name;
      };
      meta.description = role.description;
    };
in
lib.mapAttrs imageFor roles
