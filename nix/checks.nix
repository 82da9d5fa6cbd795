# Checks: the backend test-suite in the backend's own environment inside the sandbox, and per role,
# assertions on its environment's files and on its image's configuration.
#
# `nix flake check` must fit a stock runner (14 GB guaranteed free; docs/nix.md, "Store budget per
# CI job"): it checks the roles whose closure is small (`fitsStockRunner`). The CUDA role's
# environment alone is 2.8 GB of wheels plus 4.3 GB installed, so its checks (`perRole`, exposed as
# `packages.<system>.<role>-checks`) run in the images workflow's worker-gpu leg, after that leg
# has freed the disk; every leg builds its own role's checks the same way.
{
  lib,
  pkgs,
  project,
  roles,
  pythonSets,
  envs,
  images,
  backendTestEnv,
  src,
}:
let
  inherit (project.torch) isCudaOnly;
  resolve = project.pyproject-nix.build.lib.resolvers.resolveCyclic;
  sitePackages = pythonSets.none.python.sitePackages;
  gccLib = project.gccRuntime.gccLibFor pkgs;
  heavy = [
    "torch"
    "numpy"
    "pandas"
  ];

  closureOf = role: resolve pythonSets.${role.torch} (project.roles.specOf role);

  # The role's wheels that nix/strip.nix has stripped.
  strippedOf =
    role:
    lib.filter (
      n: project.strip.strips n && project.strip.isWheel pythonSets.${role.torch}.${n}
    ) (closureOf role);

  # Evaluation-time assertions on what each role's environment resolves to.
  closureProblems =
    name: role:
    let
      names = closureOf role;
      cudaOnly = lib.filter isCudaOnly names;
    in
    lib.optional (role.torch == "none" && lib.any (n: lib.elem n heavy) names)
      "${name}: resolves ${lib.concatStringsSep ", " (lib.filter (n: lib.elem n heavy) names)}"
    ++ lib.optional (role.torch != "cuda" && cudaOnly != [ ])
      "${name}: resolves CUDA-only packages ${lib.concatStringsSep ", " cudaOnly}"
    ++ lib.optional (role.torch != "none" && !(lib.elem "torch" names)) "${name}: has no torch"
    ++ lib.optional (
      role.torch == "cpu" && !(lib.hasSuffix "+cpu" pythonSets.cpu.torch.version)
    ) "${name}: torch is not the CPU wheel";

  # Every extension module of the role's stripped wheels imports in the role's environment (or, when
  # it needs a package the role lacks, loads: tools/import_extensions.py, the script bench.sizes and
  # tools/replay_fixup.py run); it fails when the wheels hold none at all.
  extensionImports = name: role: ''
    ${envs.${name}}/bin/python ${../tools/import_extensions.py} ${
      lib.concatMapStringsSep " " (n: "--site ${pythonSets.${role.torch}.${n}}/${sitePackages}") (
        strippedOf role
      )
    }
  '';

  # ...and on the built environments' files (what actually landed in site-packages): no forbidden
  # package, nothing the prune table (prune.json) removes, no debug sections left by the strip, every
  # extension module of a stripped wheel loads, and the workers import torch, numpy, pandas.
  envFileChecks =
    name: role:
    let
      forbidden =
        if role.torch == "none" then
          heavy
        else if role.torch == "cpu" then
          [
            "nvidia"
            "cuda"
            "triton"
          ]
          ++ project.torch.droppedNames "cpu"
        else
          project.torch.cudaDroppedDependencies;
      prunedPatterns = lib.unique (lib.concatMap project.prune.patternsFor (closureOf role));
      envClosure = pkgs.closureInfo { rootPaths = [ envs.${name} ]; };
    in
    lib.concatMapStrings (p: ''
      for f in ${envs.${name}}/${sitePackages}/${p}; do
        if [ -e "$f" ]; then echo "${name}-env must not contain $f" >&2; exit 1; fi
      done
    '') (forbidden ++ prunedPatterns)
    # nix/strip.nix: no extension module of a stripped wheel keeps its debug sections.
    + lib.concatMapStrings (n: ''
      for f in $(find -L ${pythonSets.${role.torch}.${n}}/${sitePackages} -type f -name '*.so*'); do
        if readelf -S "$f" | grep '\.debug_' >/dev/null; then echo "${n}: $f keeps debug sections" >&2; exit 1; fi
      done
    '') (strippedOf role)
    + extensionImports name role
    # nix/gcc-runtime.nix: the wheels link the cut-down gcc runtime, never gcc's whole lib output.
    + ''
      if grep -Fx ${gccLib} ${envClosure}/store-paths; then
        echo "${name}-env holds gcc's whole lib output: a wheel was not given nix/gcc-runtime.nix's" >&2
        exit 1
      fi
      ${envs.${name}}/bin/python -c 'import ktrdr'
    ''
    + lib.optionalString (role.torch != "none") ''
      ${envs.${name}}/bin/python -c 'import numpy, pandas, torch; m = torch.nn.Linear(4, 2); o = torch.optim.Adam(m.parameters()); m(torch.zeros(1, 4)).sum().backward(); o.step()'
    '';

  # The runtime interpreter (nix/python.nix): what its arguments and attributes remove is gone, from
  # its files and from its closure, and the standard modules a server needs still import.
  runtimePython = pythonSets.none.python;
  runtimeClosure = pkgs.closureInfo { rootPaths = [ runtimePython ]; };
  interpreterChecks =
    lib.concatMapStrings
      (p: ''
        for f in ${runtimePython}/${p}; do
          if [ -e "$f" ]; then echo "the runtime python must not contain $f" >&2; exit 1; fi
        done
      '')
      [
        "lib/python3.13/test"
        "lib/python3.13/idlelib"
        "lib/python3.13/turtledemo"
        "lib/python3.13/tkinter"
        "lib/python3.13/config-3.13-*"
        "lib/python3.13/ensurepip/_bundled"
        "lib/python3.13/pydoc_data"
        "include"
        "lib/python3.13/lib-dynload/_curses*"
        "lib/python3.13/lib-dynload/readline*"
        "lib/python3.13/lib-dynload/_gdbm*"
        "lib/python3.13/lib-dynload/_testcapi*"
        "bin/idle*"
        "bin/python*-config"
      ]
    + ''
      if find ${runtimePython} -name '*.opt-[12].pyc' | grep -q .; then
        echo "the runtime python must hold level-0 bytecode only" >&2; exit 1
      fi
      if grep -E -- '-(ncurses|readline|gdbm)-' ${runtimeClosure}/store-paths; then
        echo "the runtime python's closure must not hold ncurses, readline or gdbm" >&2; exit 1
      fi
      ${envs.backend}/bin/python -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, zoneinfo, asyncio, venv, dbm.sqlite3'
      ${envs.backend}/bin/python -c 'import zoneinfo; zoneinfo.ZoneInfo("Europe/Zurich")'
    '';

  # cpython's passthru builds `interpreter` from `self`: it must be the trimmed interpreter's own
  # executable (nix/python.nix's runtimePythonFor), or every venv and shebang would use another.
  interpreterProblems =
    lib.optional (runtimePython.interpreter != "${runtimePython}/bin/python3.13")
      "the runtime python's interpreter is ${runtimePython.interpreter}, not ${runtimePython}/bin/python3.13";

  problems = lib.concatLists (lib.mapAttrsToList closureProblems roles) ++ interpreterProblems;

  fitsStockRunner = role: role.torch != "cuda";

  # Expected image configuration, checked against the image JSON nix2container wrote.
  imageCheck =
    name: role:
    let
      expectedPort = "${toString role.port}/tcp";
    in
    ''
      img=${images.${name}}
      jq -e '."image-config".User == "1000:1000"' $img
      jq -e '."image-config".WorkingDir == "/app"' $img
      jq -e '."image-config".ExposedPorts | has("${expectedPort}")' $img
      jq -e '."image-config".Entrypoint[0] | endswith("/bin/tini")' $img
      jq -e '."image-config".Cmd[1:3] == ["serve", "${role.serve}"]' $img
      jq -e '."image-config".Env | index("KTRDR_HEALTHCHECK_URL=${project.roles.healthcheckUrl role}") != null' $img
      jq -e '."image-config".Labels | has("org.opencontainers.image.source")' $img \
        || { echo "${name}: add [project.urls] Source to pyproject.toml for the source label" >&2; exit 1; }
      jq -e '.created == "${project.imageConfig.created}"' $img
      n=$(jq '.layers | length' $img)
      [ "$n" -lt 64 ] || { echo "${name}: $n layers" >&2; exit 1; }
      ${lib.optionalString (role.torch == "cuda") ''
        jq -e '."image-config".Env | map(select(startswith("NVIDIA_VISIBLE_DEVICES="))) | length == 1' $img
      ''}
    '';

  # The common layers are shared: the backend's layers below its own (its top layer and, when it has
  # extras, their layer) are a prefix of every other image's.
  backendOwnLayers = if (project.layerPlan pythonSets).extrasFor roles.backend == [ ] then 1 else 2;
  sharedLayersCheck = name: ''
    jq -e --slurpfile b ${images.backend} \
      '.layers[0:($b[0].layers | length - ${toString backendOwnLayers})] | map(.digest) == ($b[0].layers[0:-${toString backendOwnLayers}] | map(.digest))' \
      ${images.${name}}
  '';

  # One role's checks: its environment's files, its image's configuration, and (other than the
  # backend's) its sharing of the backend's layers.
  roleCheck =
    name: role:
    pkgs.runCommand "ktrdr-${name}-checks"
      {
        nativeBuildInputs = [
          pkgs.binutils-unwrapped
          pkgs.jq
        ];
      }
      (
        envFileChecks name role
        + imageCheck name role
        + lib.optionalString (name != "backend") (sharedLayersCheck name)
        + "touch $out\n"
      );

  perRole = lib.mapAttrs roleCheck roles;

  # Evaluating any check first asserts what every role's environment resolves to.
  asserted =
    checks:
    assert lib.assertMsg (problems == [ ]) "closure assertions failed:\n${lib.concatStringsSep "\n" problems}";
    checks;
in
{
  inherit fitsStockRunner envFileChecks extensionImports;

  perRole = asserted perRole;

  # What `nix flake check` builds.
  flake = asserted (lib.filterAttrs (name: _: fitsStockRunner roles.${name}) perRole // {
    runtime-python = pkgs.runCommand "ktrdr-runtime-python" { } (interpreterChecks + "touch $out\n");

    # The backend's tests (nix/backend-tests.nix: the lean CI step's paths) with the backend's
    # dependencies, where numpy, pandas and torch do not exist. They run in a copy of the whole source:
    # tests read files of the tree (bundled strategies, pyproject.toml) and import from it
    # (pytest's pythonpath = ["."]), so only the third-party packages come from the environment.
    backend-tests =
      pkgs.runCommand "ktrdr-backend-tests"
        {
          nativeBuildInputs = [ backendTestEnv ];
        }
        ''
          cp -r ${src}/. .
          chmod -R u+w .
          export HOME=$TMPDIR
          python - <<'PY'
          import importlib.util, sys
          present = [m for m in ("numpy", "pandas", "torch") if importlib.util.find_spec(m)]
          sys.exit(f"backend env has {present}" if present else 0)
          PY
          python -m pytest -q -p no:cacheprovider -m "not postgres and not nix" \
            ${lib.escapeShellArgs (import ./backend-tests.nix)}
          touch $out
        '';
  });
}
