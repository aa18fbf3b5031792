"""A private registry for the tests: Debian's docker-registry with TLS and htpasswd authentication.

Its CA is trusted by the test dockerd the way dockerd reads it, per pull,
from `/etc/docker/certs.d/<host:port>/ca.crt` (removed again at the end), and
by the controller from the same place. The docker CLI pushes to it with a
Docker config of its own (`DOCKER_CONFIG`), which swarmctl reads in the tests
as a user's `~/.docker/config.json`. Images are built FROM scratch with the
static busybox and a `/marker` file, so a test can tell two pushes of a tag apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import pathlib
import secrets
import shutil
import subprocess
import warnings
from collections.abc import Iterator

from shoal import pki
from tests.integration import harness

CERTS_D = pathlib.Path("/etc/docker/certs.d")


@dataclasses.dataclass(frozen=True)
class PrivateRegistry:
    """A running private registry and the Docker config that is logged in to it."""

    host: str
    username: str
    password: str
    docker_config: pathlib.Path
    root: pathlib.Path

    def ref(self, name: str) -> str:
        return f"{self.host}/{name}"

    def env(self) -> dict[str, str]:
        """Environment for swarmctl or the docker CLI to use this registry's Docker config."""
        return {**os.environ, "DOCKER_CONFIG": str(self.docker_config)}


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt as crypt_

        return crypt_.crypt(password, crypt_.mksalt(crypt_.METHOD_BLOWFISH))


def docker_cli(*args: str, config: pathlib.Path | None = None, input: str | None = None) -> str:
    """The docker CLI with its own config dir (so the user's ~/.docker is never touched)."""
    argv = ["docker", "-H", harness.DOCKER_HOST, *(["--config", str(config)] if config else []), *args]
    result = subprocess.run(
        argv, capture_output=True, text=True, input=input, timeout=120, env={**os.environ, "DOCKER_BUILDKIT": "0"}
    )
    if result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def push_image(ref: str, marker: str, workdir: pathlib.Path, *, config: pathlib.Path | None = None) -> str:
    """Build a busybox image whose /marker holds `marker`, push it as `ref`, drop it locally; its digest."""
    ctx = workdir / f"image-{secrets.token_hex(4)}"
    ctx.mkdir(parents=True)
    shutil.copy(harness.require("busybox", "busybox-static"), ctx / "busybox")
    (ctx / "marker").write_text(marker)
    (ctx / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        'COPY marker /marker\nCMD ["sh"]\n'
    )
    docker_cli("build", "-q", "-t", ref, str(ctx))
    out = docker_cli("push", ref, config=config)
    digest = next(w for line in out.splitlines() for w in line.split() if w.startswith("sha256:"))
    docker_cli("rmi", ref)  # the nodes must pull it
    return digest


def forget_images(repository: str) -> None:
    """Remove every local image of a repository (what the test's pulls left on the shared engine)."""
    refs = subprocess.run(
        ["docker", "-H", harness.DOCKER_HOST, "images", "-q", "--no-trunc", repository],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    if refs:
        subprocess.run(["docker", "-H", harness.DOCKER_HOST, "rmi", "-f", *set(refs)], capture_output=True, check=False)


@contextlib.contextmanager
def private_registry(tmp: pathlib.Path) -> Iterator[PrivateRegistry]:
    """The registry on a free loopback port with TLS (its own CA) and one htpasswd user."""
    harness.require("docker-registry", "docker-registry")
    port = harness.free_port()
    host = f"127.0.0.1:{port}"
    ca_pem, ca_key = pki.new_ca("shoal test registry CA", "shoal-test")
    key = pki.new_key()
    cert = pki.issue(
        ca_pem, ca_key, pki.csr_pem(key), common_name="registry", validity=datetime.timedelta(days=1),
        dns_names=("localhost",), ip_addresses=("127.0.0.1",),
    )
    (tmp / "ca.pem").write_bytes(ca_pem)
    (tmp / "server.pem").write_bytes(cert)
    (tmp / "server-key.pem").write_bytes(pki.key_pem(key))
    username, password = "shoal", "pw-" + secrets.token_hex(12)
    (tmp / "htpasswd").write_text(f"{username}:{_bcrypt(password)}\n")
    (tmp / "registry.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {host}\n  tls:\n    certificate: {tmp / 'server.pem'}\n    key: {tmp / 'server-key.pem'}\n"
        f"auth:\n  htpasswd:\n    realm: shoal-test\n    path: {tmp / 'htpasswd'}\n"
    )
    certs = CERTS_D / host
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "ca.crt").write_bytes(ca_pem)
    proc = harness.Process("private registry", ["docker-registry", "serve", str(tmp / "registry.yml")], tmp / "log")
    config = tmp / "docker-config"
    config.mkdir()
    try:
        harness.wait_until(lambda: harness._tcp_open("127.0.0.1", port), 30, "the private registry to listen")
        docker_cli("login", "-u", username, "--password-stdin", host, config=config, input=password)
        yield PrivateRegistry(host, username, password, config, tmp)
    finally:
        proc.stop()
        shutil.rmtree(certs, ignore_errors=True)
