"""Smoke test of one image loaded into the local Docker daemon, before it is pushed.

Runs the image the way deploy/compose.yaml does (read-only root, tmpfs /tmp, a data volume) and
checks what users rely on: it runs as a non-root user, it has no shell, ``ktrdr healthcheck``
passes inside it, the backend image cannot import torch while the workers can (worker-cpu: a CPU
build; worker-gpu: a CUDA build), and a worker registers with a backend on the same network.

Usage: smoke_test.py IMAGE REF [--backend-ref REF]   (IMAGE is a role-table name)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
import uuid
from io import BytesIO
from typing import Any

from image_roles import load_roles

WAIT_SECONDS = 90


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True)


def fail(message: str) -> None:
    sys.exit(f"smoke test failed: {message}")


def image_config(ref: str) -> dict[str, Any]:
    return json.loads(docker("image", "inspect", ref).stdout)[0]["Config"]


def find_ktrdr_python(ref: str, config: dict[str, Any]) -> str:
    """The venv interpreter, read from the shebang of the image's ``ktrdr`` script.

    The images have no shell, so ``docker cp`` (which follows links with -L) reads the script out of a
    created, never started, container.
    """
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    candidates = [a for a in argv if a.rsplit("/", 1)[-1] == "ktrdr" and a.startswith("/")]
    path_dirs = next((e[5:] for e in config.get("Env") or [] if e.startswith("PATH=")), "")
    candidates += [f"{d}/ktrdr" for d in path_dirs.split(":") if d]
    container = docker("create", ref).stdout.strip()
    try:
        for candidate in candidates:
            copied = subprocess.run(
                ["docker", "cp", "-L", f"{container}:{candidate}", "-"], capture_output=True, check=False
            )
            if copied.returncode != 0:
                continue
            with tarfile.open(fileobj=BytesIO(copied.stdout)) as tar:
                member = tar.next()
                script = tar.extractfile(member) if member else None
                first = script.readline().decode() if script else ""
            if first.startswith("#!/"):
                return first[2:].split()[0]
    finally:
        docker("rm", container)
    fail(f"no ktrdr script with a shebang among {candidates}")
    raise AssertionError("unreachable")


def run_python(ref: str, python: str, code: str) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--read-only", "--entrypoint", python, ref, "-c", code, check=False)


def wait_healthy(container: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        probe = docker("exec", container, "ktrdr", "healthcheck", check=False)
        if probe.returncode == 0:
            print(f"{container}: ktrdr healthcheck passed")
            return
        running = docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip()
        if running != "true":
            break
        time.sleep(2)
    logs = docker("logs", container, check=False)
    fail(f"{container} never became healthy\n{logs.stdout}\n{logs.stderr}")


def start(name: str, ref: str, network: str, volume: str, *extra: str) -> None:
    docker(
        "run", "-d", "--name", name, "--network", network, "--read-only", "--tmpfs", "/tmp",  # noqa: S108
        "-v", f"{volume}:/app/data", *extra, ref,
    )  # fmt: skip


def check_static(image: str, ref: str, torch: str) -> None:
    config = image_config(ref)
    user = config.get("User") or ""
    if user.split(":")[0] in ("", "0", "root"):
        fail(f"image user is {user!r}: must be non-root")
    if docker("run", "--rm", "--entrypoint", "/bin/sh", ref, "-c", "true", check=False).returncode == 0:
        fail("the image has a shell at /bin/sh")
    python = find_ktrdr_python(ref, config)
    print(f"{image}: user {user}, interpreter {python}")
    uid = run_python(ref, python, "import os; print(os.getuid())")
    if uid.returncode != 0 or uid.stdout.strip() in ("", "0"):
        fail(f"processes run as uid {uid.stdout.strip()!r}: {uid.stderr}")
    if torch == "none":
        probe = run_python(ref, python, "import torch")
        if probe.returncode == 0 or "ModuleNotFoundError" not in probe.stderr:
            fail(f"the backend image must not have torch: {probe.stderr.strip()}")
        if any(run_python(ref, python, f"import {m}").returncode == 0 for m in ("numpy", "pandas")):
            fail("the backend image must not have numpy or pandas")
    else:
        expect = "torch.version.cuda is None" if torch == "cpu" else "torch.version.cuda is not None"
        code = f"import torch; assert {expect}; print(torch.__version__, torch.version.cuda)"
        probe = run_python(ref, python, code)
        if probe.returncode != 0:
            fail(f"{image}: torch check ({expect}) failed: {probe.stderr.strip()}")
        print(f"{image}: torch {probe.stdout.strip()}")


def check_running(image: str, ref: str, backend_ref: str, port: int) -> None:
    run_id = uuid.uuid4().hex[:8]
    network, volume = f"ktrdr-smoke-{run_id}", f"ktrdr-smoke-{run_id}"
    backend, worker = f"backend-{run_id}", f"{image}-{run_id}"
    docker("network", "create", network)
    docker("volume", "create", volume)
    try:
        backend_port = load_roles()["backend"].port
        start(backend, backend_ref, network, volume, "-p", f"127.0.0.1:{backend_port}:{backend_port}")
        wait_healthy(backend)
        if image == "backend":
            return
        start(
            worker, ref, network, volume,
            "-e", f"KTRDR_API_CLIENT_BASE_URL=http://{backend}:{backend_port}/api/v1",
            "-e", f"KTRDR_WORKER_PUBLIC_BASE_URL=http://{worker}:{port}",
            "-e", f"KTRDR_WORKER_ID={worker}",
        )  # fmt: skip
        wait_healthy(worker)
        deadline = time.monotonic() + WAIT_SECONDS
        url = f"http://127.0.0.1:{backend_port}/api/v1/workers"
        while time.monotonic() < deadline:
            listing = subprocess.run(["curl", "-fsS", url], capture_output=True, text=True, check=False)
            if worker in listing.stdout:
                print(f"{worker} registered with the backend")
                return
            time.sleep(2)
        fail(f"{worker} did not register with the backend; GET {url} -> {listing.stdout}{listing.stderr}")
    finally:
        for container in (worker, backend):
            logs = docker("logs", "--tail", "40", container, check=False)
            print(f"--- {container} logs (tail)\n{logs.stdout}{logs.stderr}")
            docker("rm", "-f", container, check=False)
        docker("volume", "rm", "-f", volume, check=False)
        docker("network", "rm", network, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("ref", help="the image as loaded into Docker (name:tag)")
    parser.add_argument("--backend-ref", help="the backend image workers register with (default: REF)")
    args = parser.parse_args()
    if args.image != "backend" and not args.backend_ref:
        parser.error("a worker needs --backend-ref: it is tested by registering with a backend")
    role = load_roles()[args.image]
    check_static(args.image, args.ref, role.torch)
    check_running(args.image, args.ref, args.backend_ref or args.ref, role.port)
    print(f"smoke test of {args.ref} passed")


if __name__ == "__main__":
    main()
