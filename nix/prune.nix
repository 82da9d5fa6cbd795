# The prune table (prune.json: glob patterns under site-packages, per lock package name) as a
# pyproject.nix overlay that needs only nixpkgs' lib. Each matching package removes those files in
# postInstall, so they never reach the store, a venv or an image; bench/sizes.py reads the same table.
{
  lib,
  table ? lib.importJSON ./prune.json,
}:
let
  # "nvidia-*" matches every name starting with "nvidia-"; any other key matches itself.
  keyMatches =
    key: name: if lib.hasSuffix "*" key then lib.hasPrefix (lib.removeSuffix "*" key) name else key == name;

  patternsFor =
    name: lib.concatLists (lib.mapAttrsToList (key: paths: lib.optionals (keyMatches key name) paths) table.paths);

  # Unquoted on purpose: the shell expands the globs; a pattern that matches nothing stays literal and
  # `rm -rf` ignores it.
  script = sitePackages: patterns: ''
    rm -rf ${lib.concatMapStringsSep " " (p: "$out/${sitePackages}/${p}") patterns}
  '';

  overlay =
    final: prev:
    let
      pruned = lib.filter (name: patternsFor name != [ ]) (lib.attrNames prev);
    in
    lib.genAttrs pruned (
      name:
      prev.${name}.overrideAttrs (old: {
        postInstall = (old.postInstall or "") + script final.python.sitePackages (patternsFor name);
        passthru = (old.passthru or { }) // {
          prunedPaths = patternsFor name;
        };
      })
    );
in
{
  inherit table patternsFor overlay;
}
