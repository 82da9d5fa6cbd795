# torch variants of the package set, as pyproject.nix overlays that need only nixpkgs' lib:
#   cpuOverlay   on Linux, swaps torch's source for the CPU-only wheel of the locked version (table in
#                torch-cpu-wheels.json), gives it the libraries its bundled ones link (zlib), and
#                drops every CUDA-only dependency (torch-variants.json); on macOS PyPI's torch
#                already is the CPU build;
#   cudaOverlay  drops triton (torch-variants.json), and makes the PyPI CUDA wheel and its nvidia-*
#                wheels patch cleanly under autoPatchelf (each finds the sibling wheels it links
#                through search paths from cuda-libs.json) and find the driver libraries that container
#                runtimes inject.
# What both variants prune from the installed files (headers, cmake files, tests) is in prune.json;
# how torch's libraries are stripped is in strip.json (nix/strip.nix).
# Packages are taken from the scope (`final.pkgs`), as pyproject.nix's own overlays do.
{
  lib,
  wheels ? lib.importJSON ./torch-cpu-wheels.json,
  # What each variant drops from torch's dependencies and swaps, with the reasons: the one table the
  # overlays here, the SBOM script and bench read.
  variants ? lib.importJSON ./torch-variants.json,
  # Written by tools/cuda_libs.py from the locked wheels' NEEDED entries.
  cudaLibTable ? lib.importJSON ./cuda-libs.json,
}:
let
  inGroup = group: name: lib.any (p: lib.hasPrefix p name) group.prefixes || lib.elem name group.names;

  # Whether `variant` drops `name` from torch's dependencies (a key is a name or "@group").
  droppedIn =
    variant: name:
    lib.any (
      key:
      if lib.hasPrefix "@" key then
        inGroup variants.groups.${lib.removePrefix "@" key} name
      else
        key == name
    ) (lib.attrNames variants.variants.${variant}.drop);

  withoutDropped = variant: lib.filterAttrs (name: _: !droppedIn variant name);

  # Dependencies that exist only for CUDA (the table's "cuda-only" group).
  isCudaOnly = inGroup variants.groups.cuda-only;

  withoutCudaOnly = withoutDropped "cpu";

  # "3.13" + "x86_64" -> "cp313-x86_64", the key used in torch-cpu-wheels.json
  wheelKey = pythonVersion: arch: "cp${lib.replaceStrings [ "." ] [ "" ] pythonVersion}-${arch}";

  cpuWheel =
    {
      version,
      pythonVersion,
      arch,
    }:
    let
      key = wheelKey pythonVersion arch;
      known = lib.concatStringsSep ", " (
        lib.mapAttrsToList (v: entries: "${v}: ${lib.concatStringsSep " " (lib.attrNames entries)}") wheels.wheels
      );
    in
    wheels.wheels.${version}.${key} or (throw ''
      nix/torch-cpu-wheels.json has no CPU wheel for torch ${version} (${key}), the version uv.lock pins.
      Add the entry for torch==${version} x ${key} (file, url and the sha256 of ${wheels.index}) or pin
      a torch version the table covers. The table has: ${known}.
    '');

  # torch's dependencies that `variant` drops by name (not through a group): the packages no worker
  # imports (the table says why for each).
  droppedNames = variant: lib.filter (key: !lib.hasPrefix "@" key) (lib.attrNames variants.variants.${variant}.drop);

  # The CUDA variant's: triton (torch.compile's code generator) and the never-imported ones.
  cudaDroppedDependencies = droppedNames "cuda";

  withoutCudaDropped = withoutDropped "cuda";

  # Where nvidia-container-toolkit, the GPU operator and distro images put libcuda.so.1 & co.
  # nixpkgs' glibc has no host ld.so cache, so these must be on the runpath or LD_LIBRARY_PATH.
  driverLibDirs = arch: [
    "/usr/lib64"
    "/usr/lib/${arch}-linux-gnu"
    "/usr/local/nvidia/lib64"
    "/usr/local/nvidia/lib"
  ];

  # Libraries that the CPU wheels' bundled libraries link and neither the wheel nor nixpkgs'
  # manylinux set (uv2nix's buildInputs for wheels) has: the aarch64 wheel's libgfortran.so.5 needs
  # libz.so.1 (readelf -d; docs/nix.md has what was inspected). autoPatchelf puts it on the runpath
  # only where it is needed, so the x86_64 closure does not keep it.
  cpuTorchInputs = pkgs: [ pkgs.zlib ];

  cpuOverlay =
    final: prev:
    lib.optionalAttrs (prev ? torch) {
      # The platform is read inside the attribute: the overlay's attribute names must not depend on
      # `final`, which they help define.
      torch =
        if !final.stdenv.hostPlatform.isLinux then
          prev.torch
        else
          prev.torch.overrideAttrs (
            old:
            let
              wheel = cpuWheel {
                inherit (old) version;
                inherit (final.python) pythonVersion;
                arch = final.stdenv.hostPlatform.parsed.cpu.name;
              };
            in
            {
              version = "${old.version}+cpu";
              buildInputs = (old.buildInputs or [ ]) ++ cpuTorchInputs final.pkgs;
              # The fetch's name must be the real wheel file name (with `+`, not %2B): the wheel hook
              # installs dist/$(stripHash $src), and uv checks the file name.
              src = final.pkgs.fetchurl {
                name = wheel.file;
                inherit (wheel) url hash;
              };
              passthru = old.passthru // {
                dependencies = withoutCudaOnly old.passthru.dependencies;
                optional-dependencies = lib.mapAttrs (_: withoutCudaOnly) (old.passthru.optional-dependencies or { });
                cpuWheel = wheel;
              };
            }
          );
    };

  # A CUDA wheel's fixups from cuda-libs.json: search paths into the sibling wheels its libraries
  # link (each wheel is its own store path, so $ORIGIN does not reach them; the table's "needs" graph
  # is acyclic, tests/nix checks it, so these runtime references make no cycle), the nixpkgs
  # libraries it links, and the NEEDED names nothing provides, ignored by name: the driver's
  # libcuda.so.1 and the optional transports of cuFile's and NVSHMEM's plugins.
  cudaLibFixup =
    final: name: old:
    let
      inherit (final.python) sitePackages;
      entry =
        cudaLibTable.packages.${name} or (throw ''
          nix/cuda-libs.json has no entry for ${name}; rerun `uv run python -m tools.cuda_libs` after locking.
        '');
      searchPaths = lib.concatMap (
        dep: map (dir: "${final.${dep}}/${sitePackages}/${dir}") cudaLibTable.packages.${dep}.libDirs
      ) entry.needs;
    in
    assert lib.assertMsg (entry.version == old.version) ''
      nix/cuda-libs.json describes ${name} ${entry.version}, uv.lock pins ${old.version}; rerun
      `uv run python -m tools.cuda_libs`.
    '';
    {
      autoPatchelfIgnoreMissingDeps = entry.ignoreMissing;
      appendRunpaths =
        (old.appendRunpaths or [ ])
        ++ [ "$ORIGIN" ]
        ++ driverLibDirs final.stdenv.hostPlatform.parsed.cpu.name;
      buildInputs = (old.buildInputs or [ ]) ++ map (input: final.pkgs.${input}) entry.buildInputs;
      preFixup = (old.preFixup or "") + lib.concatMapStrings (path: "addAutoPatchelfSearchPath ${path}\n") searchPaths;
    };

  cudaOverlay =
    final: prev:
    let
      cudaLibs = lib.filter (name: lib.hasPrefix "nvidia-" name || lib.hasPrefix "cuda-" name) (
        lib.attrNames prev
      );
    in
    lib.genAttrs cudaLibs (name: prev.${name}.overrideAttrs (cudaLibFixup final name))
    // lib.optionalAttrs (prev ? torch) {
      torch = prev.torch.overrideAttrs (
        old:
        cudaLibFixup final "torch" old
        // {
          passthru = old.passthru // {
            dependencies = withoutCudaDropped old.passthru.dependencies;
            optional-dependencies = lib.mapAttrs (_: withoutCudaDropped) (old.passthru.optional-dependencies or { });
            driverLibDirs = driverLibDirs final.stdenv.hostPlatform.parsed.cpu.name;
          };
        }
      );
    };
in
{
  inherit
    variants
    droppedIn
    droppedNames
    isCudaOnly
    cpuWheel
    wheelKey
    cudaDroppedDependencies
    driverLibDirs
    cpuTorchInputs
    cudaLibTable
    cpuOverlay
    cudaOverlay
    ;
  overlays = {
    none = _final: _prev: { };
    cpu = cpuOverlay;
    cuda = cudaOverlay;
  };
}
