# The backend's tests, run by the `backend-tests` check in the backend's environment: the same paths
# as the lean-environment step of .ci/run (tests/nix/test_nix_static.py checks that they agree).
[
  "tests/api"
  "tests/control"
  "tests/strategy"
  "tests/data"
  "tests/cli"
  "tests/test_roles.py"
]
