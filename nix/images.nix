# The OCI images (nix2container), one per role of this system. Layers are chained so the three images
# share them and an app-only change touches only the top layer:
#   base     Python runtime closure, tini, CA certificates, fake NSS, the root skeleton with its perms
#   common   ktrdr's core third-party dependencies (every image has them)
#   ml       numpy, pandas and torch's pure-Python dependencies (same store paths in both workers)
#   torch    the variant's torch (+ the CUDA libraries for worker-gpu)
#   extras   the role's own extras (the backend's asyncpg), where it has any
#   image    the venv and ktrdr itself: all an app-only release re-pushes (pyproject.toml's
#            app_budget_mb; bench/estimate.py estimates it)
# Which package goes where is nix/layer-plan.nix.
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

  plan = project.layerPlan pythonSets;
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
      deps = pkgsOf pythonSets.none plan.common;
      maxLayers = 8;
    }
  ];
  mlDefs = [
    {
      deps = pkgsOf pythonSets.none plan.ml;
      maxLayers = 6;
    }
  ];

  torchLayerDef = role: {
    deps = pkgsOf pythonSets.${role.torch} (plan.torchFor role);
    # One layer per big wheel (torch, cudnn, cublas, nccl...): a torch bump re-pushes only torch.
    maxLayers = 24;
  };

  # Below the image's own layer, so that layer holds only the venv and ktrdr.
  extrasDefs = role: lib.optional (plan.extrasFor role != [ ]) { deps = pkgsOf pythonSets.${role.torch} (plan.extrasFor role); };

  layersFor =
    role:
    chain (
      baseDefs ++ lib.optionals (role.torch != "none") (mlDefs ++ [ (torchLayerDef role) ]) ++ extrasDefs role
    );

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
