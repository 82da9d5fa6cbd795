# The image role table, read from pyproject.toml ([tool.ktrdr.images.<name>]): the one place that says
# what each image is (serve command, port, health path, extras, torch variant, platforms).
# Needs only nixpkgs' lib.
{ lib, pyproject }:
let
  table = pyproject.tool.ktrdr.images;

  torchVariants = [
    "none"
    "cpu"
    "cuda"
  ];

  checkRole =
    name: role:
    assert lib.assertMsg (lib.elem role.torch torchVariants)
      "pyproject.toml [tool.ktrdr.images.${name}]: torch = \"${role.torch}\" is not one of ${lib.concatStringsSep ", " torchVariants}";
    assert lib.assertMsg (
      role.torch == "none" || lib.elem "ml" role.extras
    ) "pyproject.toml [tool.ktrdr.images.${name}]: torch = \"${role.torch}\" needs the \"ml\" extra";
    role // { inherit name; };

  roles = lib.mapAttrs checkRole table;
in
{
  inherit roles;

  # Every system at least one image is built for.
  systems = lib.unique (lib.concatMap (role: role.platforms) (lib.attrValues roles));

  # The roles whose image is built on `system`.
  rolesFor = system: lib.filterAttrs (_: role: lib.elem system role.platforms) roles;

  # The uv2nix dependency spec of a role's environment.
  specOf = role: { ktrdr = role.extras; };

  # The URL `ktrdr healthcheck` probes inside the role's container.
  healthcheckUrl = role: "http://127.0.0.1:${toString role.port}${role.health}";
}
