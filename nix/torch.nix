# torch variants of the package set, as pyproject.nix overlays that need only nixpkgs' lib:
#   cpuOverlay   swaps torch's source for the CPU-only wheel of the locked version (table in
#                torch-cpu-wheels.json) and drops every CUDA-only dependency (torch-variants.json);
#   both         strip the symbol tables of torch's libraries;
#   cudaOverlay  drops triton (torch-variants.json), and makes the PyPI CUDA wheel and its nvidia-* wheels
#                patch cleanly under autoPatchelf and find the driver libraries that container
#                runtimes inject.
# What both variants prune from the installed files (headers, cmake files, tests) is in prune.json.
# Packages are taken from the scope (`final.pkgs`), as pyproject.nix's own overlays do.
{
  lib,
  wheels ? lib.importJSON ./torch-cpu-wheels.json,
  # What each variant drops from torch's dependencies and swaps, with the reasons: the one table the
  # overlays here, the SBOM script and bench read.
  variants ? lib.importJSON ./torch-variants.json,
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

  # torch's dependencies that the CUDA variant drops, by name (the table says why: triton is only
  # torch.compile's code generator).
  cudaDroppedDependencies = lib.filter (key: !lib.hasPrefix "@" key) (
    lib.attrNames variants.variants.cuda.drop
  );

  withoutCudaDropped = withoutDropped "cuda";

  # torch's own libraries keep their full symbol tables (.symtab/.strtab: ~100 MB in the CPU wheel,
  # ~180 MB in the CUDA wheel); the dynamic linker and dlsym use .dynsym only. nixpkgs' strip hook
  # (fixup phase, before autoPatchelf) strips debug sections only unless asked: ask it for
  # --strip-unneeded on torch/lib, what distributions do to shared libraries. uv2nix's dontStrip on
  # wheels silences the whole hook, these lists included: nix/strip.nix turns it back on for torch.
  stripTorchLibs = sitePackages: {
    stripAllList = [ "${sitePackages}/torch/lib" ];
    stripAllFlags = [ "--strip-unneeded" ];
  };

  # Where nvidia-container-toolkit, the GPU operator and distro images put libcuda.so.1 & co.
  # nixpkgs' glibc has no host ld.so cache, so these must be on the runpath or LD_LIBRARY_PATH.
  driverLibDirs = arch: [
    "/usr/lib64"
    "/usr/lib/${arch}-linux-gnu"
    "/usr/local/nvidia/lib64"
    "/usr/local/nvidia/lib"
  ];

  cpuOverlay =
    final: prev:
    lib.optionalAttrs (prev ? torch) {
      torch = prev.torch.overrideAttrs (
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
          inherit (stripTorchLibs final.python.sitePackages) stripAllList stripAllFlags;
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

  cudaOverlay =
    final: prev:
    let
      sitePackages = final.python.sitePackages;
      driverDirs = driverLibDirs final.stdenv.hostPlatform.parsed.cpu.name;
      names = lib.attrNames prev;
      nvidia = lib.filter (lib.hasPrefix "nvidia-") names;
      cudaLibs = lib.filter (name: lib.hasPrefix "nvidia-" name || lib.hasPrefix "cuda-" name) names;

      # The nvidia wheels dlopen each other and optional transports (libfabric, ibverbs, MPI for
      # nvshmem; ibverbs for cufile) that a container never has: ignore what is missing, keep $ORIGIN
      # for siblings (torch preloads nvidia/*/lib itself). Cross-linking them would make cycles.
      looseLib =
        name:
        prev.${name}.overrideAttrs (old: {
          autoPatchelfIgnoreMissingDeps = [ "*" ];
          appendRunpaths = (old.appendRunpaths or [ ]) ++ [ "$ORIGIN" ] ++ driverDirs;
          buildInputs = (old.buildInputs or [ ]) ++ [ final.pkgs.zlib ];
        });
    in
    lib.genAttrs cudaLibs looseLib
    // lib.optionalAttrs (prev ? torch) {
      torch = prev.torch.overrideAttrs (old: {
        # libcuda.so.1 comes with the driver at run time; every other library torch links is in its
        # own lib/ or a nvidia wheel (torch -> nvidia only, a DAG).
        autoPatchelfIgnoreMissingDeps = [ "libcuda.so.1" ];
        appendRunpaths = (old.appendRunpaths or [ ]) ++ [ "$ORIGIN" ] ++ driverDirs;
        inherit (stripTorchLibs sitePackages) stripAllList stripAllFlags;
        preFixup =
          (old.preFixup or "")
          + lib.concatMapStrings (name: "addAutoPatchelfSearchPath ${final.${name}}/${sitePackages}/nvidia\n") nvidia;
        passthru = old.passthru // {
          dependencies = withoutCudaDropped old.passthru.dependencies;
          optional-dependencies = lib.mapAttrs (_: withoutCudaDropped) (old.passthru.optional-dependencies or { });
          driverLibDirs = driverDirs;
        };
      });
    };
in
{
  inherit
    variants
    droppedIn
    isCudaOnly
    cpuWheel
    wheelKey
    cudaDroppedDependencies
    driverLibDirs
    cpuOverlay
    cudaOverlay
    ;
  overlays = {
    none = _final: _prev: { };
    cpu = cpuOverlay;
    cuda = cudaOverlay;
  };
}
