# `nix run` for Nix users: the ktrdr CLI, and the demo that is the whole evaluation in one command
# (`nix run github:OWNER/ktrdr#demo`: a throw-away stack on loopback, a bundled strategy trained on
# the CPU, backtested out of sample, its metrics and its terminal chart; nothing to set up).
#
#   apps.default  ktrdr, from an environment of the worker-cpu role's extras plus `report` (the
#                 demo's chart and `ktrdr ops report` need plotille and plotly, which no image
#                 takes): the CPU torch, no CUDA
#   apps.demo     `ktrdr demo`, a writeShellApplication around that same environment
#   checks.demo   the demo run in the build sandbox (loopback only, HOME in the build's temporary
#                 directory), so `nix flake check` runs what `nix run .#demo` runs
#
# The environment comes from the dev shells' sets (system.nix: mkDevPythonSets), on the binary
# cache's stock python313 and unstripped: a user's first `nix run` downloads the interpreter instead
# of compiling the images' trimmed one, which no public cache holds. The apps exist on Linux and
# macOS. On Intel macOS, where uv.lock has no torch wheel (project.hasTorchWheel), apps.default is
# the CLI from the backend role's extras plus `report` (it drives a stack elsewhere, writes reports)
# and there is no demo.
#
# The demo needs nothing writable but a temporary directory: sample data and strategies ship inside
# the package and are copied out (tests/e2e/test_e2e_demo.py runs it from a read-only copy).
{
  lib,
  system,
  pkgs,
  project,
  pythonSets,
}:
let
  withTorch = project.hasTorchWheel system;
  role = project.roles.roles.${if withTorch then "worker-cpu" else "backend"};

  env = pythonSets.${role.torch}.mkVirtualEnv "ktrdr-cli-env" {
    ktrdr = role.extras ++ [ "report" ];
  };

  demoDescription = "ktrdr demo: train and backtest a bundled strategy on a throw-away local stack";

  demo = pkgs.writeShellApplication {
    name = "ktrdr-demo";
    runtimeInputs = [ env ];
    text = ''
      exec ktrdr demo "$@"
    '';
    meta.description = demoDescription;
  };
in
{
  inherit env demo;

  apps = {
    default = {
      type = "app";
      program = "${env}/bin/ktrdr";
      meta.description =
        "ktrdr, the command line of the neuro-fuzzy trading research system"
        + lib.optionalString (!withTorch) " (without torch: uv.lock has no wheel for this system)";
    };
  }
  // lib.optionalAttrs withTorch {
    demo = {
      type = "app";
      program = "${demo}/bin/ktrdr-demo";
      meta.description = demoDescription;
    };
  };

  checks = lib.optionalAttrs withTorch {
    demo = pkgs.runCommand "ktrdr-demo-check" { } ''
      export HOME=$TMPDIR
      if ! ${demo}/bin/ktrdr-demo >demo.log 2>&1; then
        cat demo.log >&2
        exit 1
      fi
      for expected in "sharpe_ratio" "deepest drawdown" "demo finished"; do
        if ! grep -q "$expected" demo.log; then
          cat demo.log >&2
          echo "the demo did not print: $expected" >&2
          exit 1
        fi
      done
      cp demo.log $out
    '';
  };
}
