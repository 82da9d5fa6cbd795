# Turns nixpkgs' strip hook back on for the wheels, as a pyproject.nix overlay that needs only lib.
# What it asks the hook for is nix/strip.json, which bench/sizes.py and tools/replay_fixup.py read too.
#
# uv2nix (lib/build.nix) sets `dontStrip = true` on every wheel ("Don't strip prebuilt wheels"), a
# line inherited from poetry2nix, where it reads "Stripping pre-built wheels lead to `ELF load command
# address/offset not properly aligned`": GNU strip rewrote shared objects that auditwheel had already
# modified with an old patchelf into unloadable ones (pypa/manylinux#119, NixOS/patchelf#10). The
# wheels here were replayed through the exact fixup sequence instead (docs/nix.md, "Stripping"): the
# hook's strip on each file, then autoPatchelf's patchelf, on the locked files of torch (patchelf-
# rewritten by PyTorch's own build) and of every other wheel, x86_64 and aarch64, with binutils
# 2.40/2.44 and patchelf 0.14 to 0.18; every library loaded and torch trained afterwards.
#
# What runs, on Linux, for every wheel that is not CUDA-only: the hook's debug pass (strip.json's
# `debugFlags`, the hook's own default `-S -p`: debug sections only, .symtab and .dynsym stay) on
# $out/lib, where site-packages is, then, for the packages strip.json names under `stripAll` (torch:
# torch/lib), its `flags` (`--strip-unneeded`: the symbol tables too; the loader and dlsym use
# .dynsym). The hook is a fixupOutputHook; autoPatchelf runs later, in postFixup, so strip sees the
# files as the wheel shipped them and patchelf edits the stripped files.
#
# The CUDA wheels (nvidia-*, cuda-*, triton: `isCudaOnly`) keep uv2nix's default: of their libraries
# only nvidia-nccl's libnccl.so.2 carries debug sections (48 MB), and whether a rewritten CUDA library
# still runs its kernels can only be checked on a GPU. On macOS nothing is stripped (Mach-O files are
# signed; stripping after signing needs the re-signing hook, and no image is built there).
{
  lib,
  isCudaOnly,
  # The lock's package names: the overlay replaces only these, never the scope's own attributes.
  packageNames,
  table ? lib.importJSON ./strip.json,
}:
let
  strips = name: !isCudaOnly name;

  isWheel = drv: (drv.passthru.format or null) == "wheel";

  # The hook's attributes for one package; stripAllList is relative to $out, like stripDebugList.
  hookAttrs =
    sitePackages: name:
    {
      dontStrip = false;
      stripDebugFlags = table.debugFlags;
    }
    // lib.optionalAttrs (table.stripAll ? ${name}) {
      stripAllList = map (path: "${sitePackages}/${path}") table.stripAll.${name}.paths;
      stripAllFlags = table.stripAll.${name}.flags;
    };

  overlay =
    final: prev:
    lib.genAttrs (lib.filter (name: strips name && prev ? ${name}) packageNames) (
      name:
      let
        drv = prev.${name};
      in
      # Decided per package on access, so that an attribute list never forces a package's source.
      if isWheel drv && final.stdenv.hostPlatform.isLinux then
        drv.overrideAttrs (hookAttrs final.python.sitePackages name)
      else
        drv
    );
in
{
  inherit
    strips
    isWheel
    hookAttrs
    overlay
    table
    ;
}
