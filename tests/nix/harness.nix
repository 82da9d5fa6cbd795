# Tier-2 harness: evaluates the project's REAL nix/*.nix overlays with the REAL uv2nix, pyproject.nix
# and build-system-pkgs code, against a minimal mock of the nixpkgs scope (no nixpkgs, no builds).
# `inputs` is the folder ../shared/tools/nix-offline-inputs lays out (KTRDR_NIX_INPUTS).
#
#   nix-instantiate --eval --strict --json -E \
#     'import tests/nix/harness.nix { inputs = /path; workspaceRoot = ./.; system = "aarch64-linux"; }'
{
  inputs,
  workspaceRoot,
  system ? "x86_64-linux",
  pythonVersion ? "3.13.9",
  # Replaces nix/torch-cpu-wheels.json (to check the missing-version error).
  wheels ? null,
}:
let
  lib = import (inputs + "/nixpkgs-lib/lib");
  pyproject-nix = import (inputs + "/pyproject-nix") { inherit lib; };
  uv2nix = {
    lib = import (inputs + "/uv2nix/lib") { inherit lib pyproject-nix; };
  };
  buildSystems = import (inputs + "/pyproject-build-systems") { inherit uv2nix pyproject-nix lib; };

  sourceInfo = {
    lastModifiedDate = "20260705123456";
    rev = "0123456789abcdef0123456789abcdef01234567";
  };

  project = import (workspaceRoot + "/nix/project.nix") {
    inherit lib pyproject-nix uv2nix workspaceRoot sourceInfo;
    buildSystemsOverlay = buildSystems.wheel;
  };

  torch = import (workspaceRoot + "/nix/torch.nix") (
    { inherit lib; } // lib.optionalAttrs (wheels != null) { inherit wheels; }
  );
  prune = import (workspaceRoot + "/nix/prune.nix") { inherit lib; };
  python = import (workspaceRoot + "/nix/python.nix") {
    inherit lib uv2nix workspaceRoot torch prune;
    inherit (project) strip;
    buildSystemsOverlay = buildSystems.wheel;
  };

  # --- the mock of the nixpkgs scope -------------------------------------------------------------
  platform = lib.systems.elaborate system;
  mkDrv =
    attrs:
    let
      name = "${attrs.pname}-${attrs.version}";
    in
    attrs
    // {
      inherit name;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      overrideAttrs = f: mkDrv (attrs // (if builtins.isFunction f then f attrs else f));
    };
  stdenv = {
    hostPlatform = platform;
    targetPlatform = platform;
    buildPlatform = platform;
    inherit (platform) isLinux isDarwin;
    cc.libc = {
      pname = "glibc";
      version = "2.40";
    };
    mkDerivation = f: mkDrv (if builtins.isFunction f then lib.fix f else f);
  };
  pyVer = lib.versions.majorMinor pythonVersion;
  pythonMock = {
    pname = "python3";
    version = pythonVersion;
    inherit stdenv;
    pythonVersion = pyVer;
    sitePackages = "lib/python${pyVer}/site-packages";
    interpreter = "/nix/store/00000000000000000000000000000000-python3-${pythonVersion}/bin/python${pyVer}";
    passthru = {
      implementation = "cpython";
      pythonVersion = pyVer;
      sourceVersion = {
        major = lib.versions.major pythonVersion;
        minor = lib.versions.minor pythonVersion;
      };
    };
  };
  hook = name: { inherit name; };
  fetchurl = args: {
    fetchurl = args;
    outPath = "/nix/store/00000000000000000000000000000000-${args.name or (baseNameOf args.url)}";
  };
  pkgs = {
    inherit fetchurl;
    stdenv = stdenv;
    zlib = mkDrv {
      pname = "zlib";
      version = "1.3";
    };
    uv = mkDrv {
      pname = "uv";
      version = "0.9";
    };
    nixfmt = mkDrv {
      pname = "nixfmt";
      version = "1.0";
    };
    # nix/shells.nix's mkShell: records its arguments.
    mkShell = args: args;
  };
  scope = {
    inherit stdenv lib pkgs fetchurl;
    python = pythonMock;
    autoPatchelfHook = hook "autoPatchelfHook";
    unzip = hook "unzip";
    pyprojectHook = hook "pyprojectHook";
    pyprojectEditableHook = hook "pyprojectEditableHook";
    pyprojectWheelHook = hook "pyprojectWheelHook";
    pythonManylinuxPackages = {
      manylinux1 = [ ];
      manylinux2010 = [ ];
      manylinux2014 = [ ];
    };
  };
  # A fixed point like pyproject.nix's makeScope: packages are called with, and build systems
  # resolved from, the final set (so overlays that add build inputs are evaluated for real).
  baseOf = overlay: final: scope // {
    # pyproject.nix's mkVirtualEnv and overrideScope, as far as nix/shells.nix uses them.
    mkVirtualEnv = name: spec: {
      inherit name spec;
      packages = closure final spec;
    };
    overrideScope = extra: setFor (lib.composeExtensions overlay extra);
    # Native builds: pyproject.nix aliases both to the set itself.
    pythonPkgsBuildHost = final;
    pythonPkgsHostHost = final;
    callPackage =
      f: args:
      let
        fn = if builtins.isFunction f then f else import f;
      in
      lib.makeOverridable fn (builtins.intersectAttrs (builtins.functionArgs fn) final // args);
    resolveBuildSystem =
      spec: map (name: final.${name}) (pyproject-nix.build.lib.resolvers.resolveNonCyclic [ ] final spec);
  };
  setFor = overlay: lib.fix (lib.extends overlay (baseOf overlay));

  sets = lib.genAttrs [ "none" "cpu" "cuda" ] (variant: setFor (python.overlayFor variant));

  # nix/python.nix's mkPythonSets against a mock pkgs: which interpreter each variant's set is built on
  # (python313.override records its arguments; callPackage records the python it is given).
  # overrideAttrs applies its function to a stand-in of cpython's attributes (what runtimePythonAttrs
  # reads) and records the result.
  stockPythonAttrs = {
    configureFlags = [
      "--without-ensurepip"
      "--with-tzpath=/nix/store/00000000000000000000000000000000-tzdata/share/zoneinfo"
    ];
    postInstall = "# stock postInstall\n";
    passthru.pythonOnBuildForHost = {
      outPath = "/nix/store/00000000000000000000000000000000-python3-${pythonVersion}-override-again";
    };
  };
  hostPkgs = {
    inherit stdenv;
    python313 = pythonMock // {
      override =
        args:
        pythonMock
        // {
          outPath = "/nix/store/00000000000000000000000000000000-python3-${pythonVersion}-overridden";
          overrideArgs = args;
          overrideAttrs =
            f:
            let
              attrs = stockPythonAttrs // f stockPythonAttrs;
            in
            pythonMock
            // attrs
            // attrs.passthru
            // {
              outPath = "/nix/store/00000000000000000000000000000000-python3-${pythonVersion}-runtime";
              overrideArgs = args;
            };
        };
    };
    callPackage = _f: args: {
      overrideScope = overlay: {
        inherit (args) python;
        # Whether the set's overlay turns the strip hook back on (checked on one wheel).
        strips = !((setFor overlay).sqlalchemy.dontStrip or true);
      };
    };
  };
  hostSets = python.mkPythonSets {
    pkgs = hostPkgs;
    inherit pyproject-nix;
  };
  editableSet = setFor (lib.composeExtensions (python.overlayFor "none") python.editableOverlay);

  # nix/shells.nix with the mock sets, and the sets system.nix gives it (mkDevPythonSets).
  shells = import (workspaceRoot + "/nix/shells.nix") {
    inherit lib pkgs project;
    pythonSets = sets;
  };
  devHostSets = python.mkDevPythonSets {
    pkgs = hostPkgs;
    inherit pyproject-nix;
  };

  # The same resolver mkVirtualEnv uses.
  closure = set: spec: pyproject-nix.build.lib.resolvers.resolveCyclic set spec;

  # What each image's environment holds, per the role table: names and the torch derivation.
  images = lib.mapAttrs (
    _: role:
    let
      set = sets.${role.torch};
      names = closure set (project.roles.specOf role);
    in
    {
      inherit (role) torch platforms;
      packages = names;
      torchAttrs = lib.optionalAttrs (lib.elem "torch" names) {
        inherit (set.torch) version;
        src = set.torch.src.fetchurl or null;
        dependencies = lib.attrNames set.torch.passthru.dependencies;
        autoPatchelfIgnoreMissingDeps = set.torch.autoPatchelfIgnoreMissingDeps or null;
        buildInputs = map (drv: drv.pname or drv.name) (set.torch.buildInputs or [ ]);
        appendRunpaths = set.torch.appendRunpaths or [ ];
        preFixup = set.torch.preFixup or "";
        postInstall = set.torch.postInstall or "";
        stripAllList = set.torch.stripAllList or [ ];
        stripAllFlags = set.torch.stripAllFlags or [ ];
      };
      # What the prune overlay did to each package: the patterns it records and its postInstall.
      pruned = lib.genAttrs names (n: {
        paths = (set.${n}.passthru or { }).prunedPaths or [ ];
        postInstall = set.${n}.postInstall or "";
      });
      # uv2nix's dontStrip, after nix/strip.nix, with each package's format and the hook's lists.
      strip = lib.genAttrs names (n: {
        format = set.${n}.passthru.format or "local";
        dontStrip = set.${n}.dontStrip or null;
        stripDebugFlags = set.${n}.stripDebugFlags or null;
        stripAllList = set.${n}.stripAllList or null;
        stripAllFlags = set.${n}.stripAllFlags or null;
      });
      cudaLibFixups = lib.listToAttrs (
        map (n: {
          name = n;
          value = {
            ignore = set.${n}.autoPatchelfIgnoreMissingDeps or null;
            appendRunpaths = set.${n}.appendRunpaths or [ ];
            preFixup = set.${n}.preFixup or "";
            buildInputs = map (drv: drv.pname or drv.name) (set.${n}.buildInputs or [ ]);
          };
        }) (lib.filter torch.isCudaOnly names)
      );
    }
  ) project.roles.roles;
in
{
  inherit images;
  pruneTable = prune.table;
  runtimePython = lib.mapAttrs (_: set: {
    path = set.python.outPath;
    args = removeAttrs set.python.overrideArgs [ "self" ];
    selfIsTheOverride = set.python.overrideArgs.self.outPath == set.python.outPath;
    inherit (set.python) configureFlags postInstall;
    buildPythonIsItself = set.python.pythonOnBuildForHost.outPath == set.python.outPath;
  }) hostSets;
  runtimePythonArgs = python.runtimePythonArgs;
  # The dev shells' interpreter: stock python313, no override.
  devPython = lib.mapAttrs (_: set: {
    stock = set.python == hostPkgs.python313;
    overridden = set.python ? overrideArgs;
    inherit (set) strips;
  }) devHostSets;
  imagesStrip = lib.mapAttrs (_: set: set.strips) hostSets;
  shells = lib.mapAttrs (_: shell: rec {
    inherit (shell) env shellHook;
    packages = map (p: p.pname or p.name) shell.packages;
    venv = (lib.head shell.packages).packages;
    formats = lib.genAttrs venv (n: (sets.cpu.${n} or sets.none.${n}).passthru.format or "local");
  }) shells;
  # Where the dev shell's torch comes from (the CPU table on Linux, the lock on macOS).
  cpuTorchUrl = sets.cpu.torch.src.fetchurl.url or sets.cpu.torch.src.url or null;
  devSystems = project.devSystems;
  systems = project.systems;
  rolesForSystem = lib.attrNames (project.roles.rolesFor system);
  wheelFormats = lib.mapAttrs (_: drv: drv.passthru.format or "local") (
    lib.filterAttrs (n: _: lib.elem n (closure sets.none python.workspace.deps.all)) sets.none
  );
  buildSystemHasHatchling = sets.none ? hatchling;
  appSource = {
    isStorePath = lib.hasPrefix builtins.storeDir (toString python.appSource);
  };
  editable = {
    editableRoot = editableSet.ktrdr.EDITABLE_ROOT or null;
    buildInputs = map (drv: drv.pname or drv.name) editableSet.ktrdr.nativeBuildInputs;
    src = toString editableSet.ktrdr.src == toString python.editableSource;
    # What the editable source holds, relative to the workspace root.
    srcFiles = lib.filter (rel: python.editableSource.filter (toString workspaceRoot + "/" + rel) "regular") [
      "pyproject.toml"
      "README.md"
      "ktrdr"
      "ktrdr/__init__.py"
      "ktrdr/cli/main.py"
      "tests/conftest.py"
      "uv.lock"
    ];
    packages = closure editableSet python.workspace.deps.all;
  };
  imageConfigs = lib.mapAttrs (
    name: _:
    project.imageConfig.configFor {
      inherit name;
      venv = "/nix/store/00000000000000000000000000000000-ktrdr-${name}-env";
      tini = "/nix/store/00000000000000000000000000000000-tini-0.19.0";
      driverLibDirs = torch.driverLibDirs platform.parsed.cpu.name;
    }
  ) project.roles.roles;
  # The shared layers' package names, as nix/images.nix splits each image.
  layers =
    let
      plan = project.layerPlan sets;
    in
    {
      inherit (plan) common ml;
      torch = lib.mapAttrs (_: plan.torchFor) project.roles.roles;
      own = lib.mapAttrs (_: plan.ownFor) project.roles.roles;
      extras = lib.mapAttrs (_: plan.extrasFor) project.roles.roles;
    };
  perms = project.imageConfig.permsFor "/nix/store/00000000000000000000000000000000-ktrdr-root";
  inherit (project.imageConfig) rootDirs passwdLines groupLines created;
}
