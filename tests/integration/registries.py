"""A private registry for the tests: Debian's docker-registry with TLS and htpasswd authentication.

It runs in a network namespace of its own, reached over a veth pair at
REGISTRY_ADDR: dockerd counts every loopback registry as insecure, and then
falls back from HTTPS to plain HTTP and reports that attempt's error instead
of the registry's refusal. Its CA is trusted by the test dockerd the way
dockerd reads it, per pull, from `/etc/docker/certs.d/<host:port>/ca.crt`
(removed again at the end), and by the controller from the same place. The docker CLI pushes to it with a
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
#: The registry's namespace and this machine's end of the veth pair: a /30 at the top of the
#: storage work's subnet (10.85.0.0/24), away from the addresses a lab of that subnet uses.
REGISTRY_ADDR, HOST_ADDR, PREFIX_LEN = "10.85.0.254", "10.85.0.253", 30


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


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _namespace() -> Iterator[str]:
    """A network namespace holding REGISTRY_ADDR, joined to this machine by a veth pair."""
    netns, veth = f"sst-reg-{os.getpid()}", f"sstreg{os.getpid() % 100000}"
    _ip("netns", "add", netns)
    try:
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("addr", "add", f"{HOST_ADDR}/{PREFIX_LEN}", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("-n", netns, "addr", "add", f"{REGISTRY_ADDR}/{PREFIX_LEN}", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        yield netns
    finally:
        subprocess.run(["ip", "link", "del", veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


@contextlib.contextmanager
def private_registry(tmp: pathlib.Path) -> Iterator[PrivateRegistry]:
    """The registry in its own namespace with TLS (its own CA) and one htpasswd user."""
    harness.require("docker-registry", "docker-registry")
    port = 5000
    host = f"{REGISTRY_ADDR}:{port}"
    ca_pem, ca_key = pki.new_ca("shoal test registry CA", "shoal-test")
    key = pki.new_key()
    cert = pki.issue(
        ca_pem, ca_key, pki.csr_pem(key), common_name="registry", validity=datetime.timedelta(days=1),
        ip_addresses=(REGISTRY_ADDR,),
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
    config = tmp / "docker-config"
    config.mkdir()
    with _namespace() as netns:
        certs.mkdir(parents=True, exist_ok=True)
        (certs / "ca.crt").write_bytes(ca_pem)
        proc = harness.Process(
            "private registry",
            ["nsenter", f"--net=/run/netns/{netns}", "docker-registry", "serve", str(tmp / "registry.yml")],
            tmp / "log",
        )
        try:
            harness.wait_until(lambda: harness._tcp_open(REGISTRY_ADDR, port), 30, "the private registry to listen")
            docker_cli("login", "-u", username, "--password-stdin", host, config=config, input=password)
            yield PrivateRegistry(host, username, password, config, tmp)
        finally:
            proc.stop()
            shutil.rmtree(certs, ignore_errors=True)
