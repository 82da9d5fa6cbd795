# Turns nixpkgs' strip hook back on for the wheels, as a pyproject.nix overlay that needs only lib.
#
# uv2nix (lib/build.nix) sets `dontStrip = true` on every wheel ("Don't strip prebuilt wheels"), a
# line inherited from poetry2nix, where it reads "Stripping pre-built wheels lead to `ELF load command
# address/offset not properly aligned`": GNU strip rewrote some shared objects that auditwheel had
# already modified with an old patchelf into unloadable ones (pypa/manylinux#119, NixOS/patchelf#10).
# It is a blanket guard, not a property of any wheel here: asyncpg, sqlalchemy, pyyaml and greenlet
# ship their extension modules with full DWARF (~22 MB of the backend), and `dontStrip` also silences
# the strip hook's `stripAllList`, so nix/torch.nix's torch/lib strip never ran without this overlay.
#
# What runs: the hook's defaults, `strip -S -p` (debug sections only; .symtab and .dynsym stay) on
# $out/lib, where site-packages is, plus torch's own `stripAllList`. The hook is a fixupOutputHook;
# autoPatchelf runs later, in postFixup, so strip sees the wheel's files as they were linked and
# patchelf edits the stripped files; nothing is re-linked. bench/sizes.py applies the same rule
# (`strips`) to its scratch environments and imports every stripped extension module afterwards.
#
# The CUDA wheels (nvidia-*, cuda-*, triton: `isCudaOnly`) keep uv2nix's default. Of their libraries
# only nvidia-nccl's libnccl.so.2 carries debug sections (48 MB, of a 2.8 GB set), it has an unusual
# two-segment layout, and whether a rewritten CUDA library still loads can only be checked on a GPU.
{
  lib,
  isCudaOnly,
  # The lock's package names: the overlay replaces only these, never the scope's own attributes.
  packageNames,
}:
let
  strips = name: !isCudaOnly name;

  isWheel = drv: (drv.passthru.format or null) == "wheel";

  overlay =
    _final: prev:
    lib.genAttrs (lib.filter (name: strips name && prev ? ${name}) packageNames) (
      name:
      let
        drv = prev.${name};
      in
      # Decided per package on access, so that an attribute list never forces a package's source.
      if isWheel drv then drv.overrideAttrs { dontStrip = false; } else drv
    );
in
{
  inherit strips isWheel overlay;
}
