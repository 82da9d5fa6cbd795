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
    inherit (project) strip gccRuntime;
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
  # A package of nixpkgs that the overlays only name.
  pkg = pname: version: mkDrv { inherit pname version; };
  # gcc with its lib output, and glibc, as nixpkgs' manylinux lists hold them.
  gcc = pkg "gcc" "14.3.0" // {
    lib = pkg "gcc-lib" "14.3.0";
  };
  glibc = pkg "glibc" "2.40";
  stdenv = {
    hostPlatform = platform;
    targetPlatform = platform;
    buildPlatform = platform;
    inherit (platform) isLinux isDarwin;
    cc.libc = glibc;
    cc.cc = gcc;
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
  manylinux = [
    glibc
    gcc.lib
    (pkg "libX11" "1.8")
  ];
  pkgs = {
    inherit fetchurl glibc;
    stdenv = stdenv;
    pythonManylinuxPackages = {
      manylinux1 = manylinux;
      manylinux2010 = manylinux;
      manylinux2014 = manylinux;
    };
    patchelf = pkg "patchelf" "0.18";
    removeReferencesTo = pkg "remove-references-to" "0";
    runCommand = name: env: script: record name (env // { inherit name script; });
    closureInfo = args: record "closure-info" args;
    zlib = pkg "zlib" "1.3";
    uv = pkg "uv" "0.9";
    nixfmt = pkg "nixfmt" "1.0";
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
    inherit (pkgs) pythonManylinuxPackages;
  };
  # A fixed point like pyproject.nix's makeScope: packages are called with, and build systems
  # resolved from, the final set (so overlays that add build inputs are evaluated for real), on the
  # interpreter `python`.
  baseOf = python: overlay: final: scope // {
    inherit python;
    # pyproject.nix's mkVirtualEnv and overrideScope, as far as nix/shells.nix and nix/apps.nix use
    # them; the environment records what it is built from.
    mkVirtualEnv =
      name: spec:
      let
        env = {
          inherit spec;
          packages = closure final spec;
          trimmedPython = final.python ? overrideArgs;
          stripped = strips final;
        };
      in
      env
      // {
        inherit name;
        inherit (final) python;
        torchVersion = final.torch.version;
        formats = lib.genAttrs env.packages (n: final.${n}.passthru.format or "local");
        outPath = storePath name env;
      };
    overrideScope = extra: setOn python (lib.composeExtensions overlay extra);
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
  setOn = python: overlay: lib.fix (lib.extends overlay (baseOf python overlay));

  # A store path that, as Nix's, depends on what the derivation is made from.
  storePath =
    name: inputs:
    "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" (builtins.toJSON inputs))}-${name}";
  record = name: args: args // { outPath = storePath name args; };

  # A stand-in of cpython's attributes, for python313.override's overrideAttrs: it applies its
  # function to these (what runtimePythonAttrs reads) and records the result.
  stockPythonAttrs = {
    configureFlags = [
      "--without-ensurepip"
      "--with-tzpath=/nix/store/00000000000000000000000000000000-tzdata/share/zoneinfo"
    ];
    postInstall = "# stock postInstall\n";
    passthru = pythonMock.passthru // {
      pythonOnBuildForHost = {
        outPath = "/nix/store/00000000000000000000000000000000-python3-${pythonVersion}-override-again";
      };
    };
  };
  # The mock pkgs nix/system.nix is called with. nix/python.nix's mkPythonSets and mkDevPythonSets
  # use python313.override, which records its arguments, and callPackage, which gives back the mock
  # base set on the interpreter it is given (its overrideScope applies the variant's overlay).
  hostPkgs = pkgs // {
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
              # As cpython's passthruFun: the executable of `self`.
              interpreter = "${args.self.outPath}/bin/python${pyVer}";
              overrideArgs = args;
            };
        };
    };
    callPackage = _f: args: {
      overrideScope = setOn args.python;
    };
    # nix/apps.nix's writers: they record their arguments.
    writeShellApplication = args: record args.name args;
    runCommand = name: env: script: record name (env // { inherit script; });
  };
  # nix/system.nix itself, for the outputs that need nothing but the mock (its dev shells).
  systemOutputs = import (workspaceRoot + "/nix/system.nix") {
    inherit lib system project;
    pkgs = hostPkgs;
    n2c = null;
    src = null;
  };

  # The images' sets (the trimmed interpreter, stripping) and the dev shells' (stock, no stripping).
  sets = python.mkPythonSets {
    pkgs = hostPkgs;
    inherit pyproject-nix;
  };
  devSets = python.mkDevPythonSets {
    pkgs = hostPkgs;
    inherit pyproject-nix;
  };
  # Whether a set's overlay turns the strip hook back on (checked on one wheel).
  strips = set: !(set.sqlalchemy.dontStrip or true);

  # The dev shells' editable set, as nix/shells.nix makes it.
  editableSet = devSets.none.overrideScope python.editableOverlay;

  shells = systemOutputs.devShells;

  # The same resolver mkVirtualEnv uses.
  closure = set: spec: pyproject-nix.build.lib.resolvers.resolveCyclic set spec;

  # nix/apps.nix on the dev sets, to read its environment and demo script; the apps and checks
  # themselves are read from nix/system.nix's outputs, whose paths must be these.
  appsOnDevSets = import (workspaceRoot + "/nix/apps.nix") {
    inherit lib system project;
    pkgs = hostPkgs;
    pythonSets = devSets;
  };

  # nix/checks.nix on the images' sets, with each role's environment as nix/system.nix makes it: the
  # command that imports every extension module of the role's stripped wheels.
  roles = project.roles.rolesFor system;
  checksOnSets = import (workspaceRoot + "/nix/checks.nix") {
    inherit lib project roles;
    pkgs = hostPkgs;
    pythonSets = sets;
    envs = lib.mapAttrs (
      name: role: sets.${role.torch}.mkVirtualEnv "ktrdr-${name}-env" (project.roles.specOf role)
    ) roles;
    images = null;
    backendTestEnv = null;
    src = null;
  };

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
  apps =
    let
      inherit (appsOnDevSets) env demo;
    in
    {
      inherit (systemOutputs) apps;
      # (`path`, not `outPath`: an attribute set with an outPath is written out as that string.)
      env = {
        path = env.outPath;
        inherit (env)
          spec
          packages
          trimmedPython
          stripped
          formats
          ;
        torchVersion = if lib.elem "torch" env.packages then env.torchVersion else null;
      };
      demo = {
        path = demo.outPath;
        inherit (demo) name text;
        runtimeInputs = map (input: input.outPath) demo.runtimeInputs;
      };
      checks = lib.mapAttrs (_: check: {
        path = check.outPath;
        inherit (check) script;
      }) (lib.filterAttrs (name: _: name == "demo") systemOutputs.checks);
    };
  extensionImports = lib.mapAttrs (name: role: {
    command = checksOnSets.extensionImports name role;
    # (Without the store paths' context, which builtins.match refuses.)
    inEnvFileChecks =
      lib.hasInfix (builtins.unsafeDiscardStringContext (checksOnSets.extensionImports name role))
        (builtins.unsafeDiscardStringContext (checksOnSets.envFileChecks name role));
  }) roles;
  pruneTable = prune.table;
  runtimePython = lib.mapAttrs (_: set: {
    path = set.python.outPath;
    args = removeAttrs set.python.overrideArgs [ "self" ];
    selfIsTheOverride = set.python.overrideArgs.self.outPath == set.python.outPath;
    inherit (set.python) configureFlags postInstall;
    buildPythonIsItself = set.python.pythonOnBuildForHost.outPath == set.python.outPath;
  }) sets;
  runtimePythonArgs = python.runtimePythonArgs;
  # The dev shells' interpreter: stock python313, no override.
  devPython = lib.mapAttrs (_: set: {
    stock = set.python == hostPkgs.python313;
    overridden = set.python ? overrideArgs;
    strips = strips set;
  }) devSets;
  imagesStrip = lib.mapAttrs (_: strips) sets;
  # What a C++ wheel (greenlet, in every image) is given to link against, in the images' sets and in
  # the dev shells', and the script of the cut-down gcc runtime.
  gccRuntime =
    let
      inputsOf = set: map (drv: drv.pname or drv.name) set.greenlet.buildInputs;
      runtime = lib.findFirst (drv: drv ? script) null sets.none.greenlet.buildInputs;
    in
    {
      images = lib.mapAttrs (_: inputsOf) sets;
      dev = lib.mapAttrs (_: inputsOf) devSets;
      inherit (runtime) name script;
      disallowedReferences = map (drv: drv.pname) runtime.disallowedReferences;
    };
  # What each shell's environment, and the editable set, are built on: the images' trimmed
  # interpreter or not, stripped or not.
  shellSets =
    lib.mapAttrs (_: shell: {
      trimmedPython = (lib.head shell.packages).python ? overrideArgs;
      inherit (lib.head shell.packages) stripped;
    }) shells
    // {
      editable = {
        trimmedPython = editableSet.python ? overrideArgs;
        stripped = strips editableSet;
      };
    };
  shells = lib.mapAttrs (_: shell: rec {
    inherit (shell) env shellHook;
    packages = map (p: p.pname or p.name) shell.packages;
    venv = (lib.head shell.packages).packages;
    formats = lib.genAttrs venv (n: (devSets.cpu.${n} or devSets.none.${n}).passthru.format or "local");
  }) shells;
  # Where the dev shell's torch comes from (the CPU table on Linux, the lock on macOS).
  cpuTorchUrl = devSets.cpu.torch.src.fetchurl.url or devSets.cpu.torch.src.url or null;
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
