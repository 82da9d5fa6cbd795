# Which Python packages go into which shared image layer (nix/images.nix), from the package sets
# alone, so tests/nix/ can check it without nixpkgs. Names only; images.nix takes the derivations.
#   common  ktrdr's core dependencies: every image has them (a role's extras, e.g. the backend's
#           asyncpg, stay in that image's own layer)
#   ml      what the `ml` extra adds besides torch and the CUDA-only packages: the same store paths
#           in both workers
#   torch   the role's torch and, for CUDA, the nvidia-*/cuda-*/triton packages
#   extras  the role's own extras (the backend's asyncpg); ktrdr and the venv are the image's own layer
{
  lib,
  resolveCyclic,
  isCudaOnly,
  specOf,
}:
sets:
let
  isShared = name: lib.elem name (common ++ ml);
  isTorch = name: name == "torch" || isCudaOnly name;

  common = lib.filter (name: name != "ktrdr") (resolveCyclic sets.none { ktrdr = [ ]; });
  ml = lib.filter (name: !(lib.elem name common) && name != "ktrdr" && !isTorch name) (
    resolveCyclic sets.cpu { ktrdr = [ "ml" ]; }
  );
  # What a role's environment holds outside the shared layers: ktrdr and the role's own extras.
  ownFor =
    role: lib.filter (name: !isShared name && !isTorch name) (resolveCyclic sets.${role.torch} (specOf role));
in
{
  inherit common ml ownFor;

  torchFor = role: lib.filter isTorch (resolveCyclic sets.${role.torch} (specOf role));

  # The role's own extras (the backend's asyncpg): their layer sits below the image's own one, which
  # then holds only what an app-only release changes (the venv and ktrdr).
  extrasFor = role: lib.filter (name: name != "ktrdr") (ownFor role);
}
