# gcc's runtime for the wheels, cut down to what they link (gcc-runtime.json's `libraries`), as a
# pyproject.nix overlay that needs only nixpkgs' lib.
#
# uv2nix (lib/build.nix) gives every manylinux wheel `pythonManylinuxPackages.manylinux2014` as
# buildInputs, which it takes from the package set's scope (callPackage), falling back to nixpkgs'.
# nixpkgs' list holds `lib.getLib stdenv.cc.cc`, gcc's whole lib output; autoPatchelf then points
# every C++ extension (greenlet in the backend; numpy, pandas and torch in the workers) at it, and the
# whole output lands in the image. gcc 14.2's runtime libraries, as Debian packages them, are 35.4 MB
# (the sanitizers libasan, libtsan, libhwasan, liblsan and libubsan 31.8 MB of it); how many of them
# nixpkgs' lib output carries could not be measured here. The locked wheels need libstdc++ (torch
# ships its own libgomp; tests/nix/test_gcc_runtime.py scans them); with libgomp, kept for a wheel
# that links it without shipping it, that is 2.8 MB. This overlay puts nixpkgs' lists into the scope
# with gcc's lib output swapped for a store path holding copies of only those two, their RUNPATH set
# to glibc's lib/ (which carries libgcc_s.so.1) and every other reference to gcc's output removed:
# the build fails, through disallowedReferences, if one stayed.
#
# The images' sets only (python.nix's overlayFor); the dev shells keep nixpkgs' list.
{
  lib,
  table ? lib.importJSON ./gcc-runtime.json,
}:
let
  inherit (table) libraries;

  # gcc's lib output, as nixpkgs' manylinux lists name it.
  gccLibFor = pkgs: lib.getLib pkgs.stdenv.cc.cc;

  runtimeFor =
    pkgs:
    let
      gccLib = gccLibFor pkgs;
      glibcLib = lib.getLib pkgs.glibc;
    in
    pkgs.runCommand "gcc-runtime-libs-${pkgs.stdenv.cc.cc.version}"
      {
        nativeBuildInputs = [
          pkgs.patchelf
          pkgs.removeReferencesTo
        ];
        disallowedReferences = [ gccLib ];
      }
      ''
        mkdir -p $out/lib
        for name in ${lib.escapeShellArgs libraries}; do
          cp -L ${gccLib}/lib/$name $out/lib/$name
          chmod u+w $out/lib/$name
          patchelf --set-rpath ${glibcLib}/lib $out/lib/$name
          remove-references-to -t ${gccLib} $out/lib/$name
        done
      '';

  # nixpkgs' manylinux lists with gcc's lib output replaced by `runtime`; it must be in them, or the
  # swap would silently do nothing.
  swapped =
    pkgs:
    let
      stock = pkgs.pythonManylinuxPackages;
      gccLib = gccLibFor pkgs;
      runtime = runtimeFor pkgs;
      isGccLib = drv: drv.outPath == gccLib.outPath;
      swap =
        name:
        assert lib.assertMsg (lib.any isGccLib stock.${name})
          "nix/gcc-runtime.nix: nixpkgs' pythonManylinuxPackages.${name} no longer holds gcc's lib output";
        map (drv: if isGccLib drv then runtime else drv) stock.${name};
    in
    stock
    // lib.genAttrs [
      "manylinux1"
      "manylinux2010"
      "manylinux2014"
    ] swap;

  overlay = final: _prev: {
    pythonManylinuxPackages = swapped final.pkgs;
  };
in
{
  inherit
    table
    libraries
    gccLibFor
    runtimeFor
    overlay
    ;
}
