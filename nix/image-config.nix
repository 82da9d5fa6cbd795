# The OCI configuration of each image, derived from the role table: command, environment, ports,
# user, labels, creation date; and the writable directories with their ownership (nix2container
# `perms`). Pure data from lib alone, so tests/nix/ can check it without building anything.
{
  lib,
  roles,
  pyproject,
  sourceInfo ? { },
}:
let
  uid = 1000;
  gid = 1000;
  user = "ktrdr";
  home = "/home/${user}";
  dataDir = "/app/data";
  modelsDir = "${dataDir}/models";

  # "20260705123456" (the flake's lastModifiedDate) -> "2026-07-05T12:34:56Z": rebuilds of one commit
  # carry the same date, so they are bit-identical.
  rfc3339 =
    date:
    let
      s = start: len: builtins.substring start len date;
    in
    "${s 0 4}-${s 4 2}-${s 6 2}T${s 8 2}:${s 10 2}:${s 12 2}Z";

  created =
    if sourceInfo ? lastModifiedDate then rfc3339 sourceInfo.lastModifiedDate else "1970-01-01T00:00:01Z";

  revision = sourceInfo.rev or sourceInfo.dirtyRev or "unknown";

  source = pyproject.project.urls.Source or null;

  labels =
    name:
    {
      "org.opencontainers.image.title" = "ktrdr-${name}";
      "org.opencontainers.image.description" = roles.roles.${name}.description;
      "org.opencontainers.image.version" = pyproject.project.version;
      "org.opencontainers.image.revision" = revision;
      "org.opencontainers.image.created" = created;
      "org.opencontainers.image.licenses" = pyproject.project.license or "";
    }
    // lib.optionalAttrs (source != null) { "org.opencontainers.image.source" = source; };

  cudaEnv = driverLibDirs: [
    "NVIDIA_VISIBLE_DEVICES=all"
    "NVIDIA_DRIVER_CAPABILITIES=compute,utility"
    "LD_LIBRARY_PATH=${lib.concatStringsSep ":" driverLibDirs}"
  ];
in
{
  inherit
    uid
    gid
    user
    home
    dataDir
    modelsDir
    created
    revision
    rfc3339
    labels
    ;

  # Directories the image root holds, relative to /.
  rootDirs = [
    "tmp"
    (lib.removePrefix "/" home)
    (lib.removePrefix "/" modelsDir)
  ];

  passwdLines = [ "${user}:x:${toString uid}:${toString gid}:ktrdr:${home}:/sbin/nologin" ];
  groupLines = [ "${user}:x:${toString gid}:" ];

  # nix2container perms for the root derivation `path` (regexes match the source path; last match wins).
  permsFor = path: [
    {
      inherit path;
      regex = "/tmp$";
      mode = "1777";
    }
    {
      inherit path;
      regex = "(${home}|${dataDir}|${modelsDir})$";
      mode = "0755";
      inherit uid gid;
      uname = user;
      gname = user;
    }
  ];

  # The OCI config of image `name`, given the store paths of its venv and of tini.
  configFor =
    {
      name,
      venv,
      tini,
      driverLibDirs ? [ ],
    }:
    let
      role = roles.roles.${name};
    in
    {
      User = "${toString uid}:${toString gid}";
      WorkingDir = "/app";
      Entrypoint = [
        "${tini}/bin/tini"
        "--"
      ];
      Cmd = [
        "${venv}/bin/ktrdr"
        "serve"
        role.serve
        "--host"
        "0.0.0.0"
        "--port"
        (toString role.port)
      ];
      Env = [
        "PATH=${venv}/bin"
        "HOME=${home}"
        "TMPDIR=/tmp"
        "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
        "PYTHONDONTWRITEBYTECODE=1"
        "PYTHONUNBUFFERED=1"
        "KTRDR_DATA_DIR=${dataDir}"
        "KTRDR_MODELS_DIR=${modelsDir}"
        "KTRDR_HEALTHCHECK_URL=${roles.healthcheckUrl role}"
      ]
      ++ lib.optionals (role.torch == "cuda") (cudaEnv driverLibDirs);
      ExposedPorts = {
        "${toString role.port}/tcp" = { };
      };
      Labels = labels name;
      StopSignal = "SIGTERM";
    };
}
