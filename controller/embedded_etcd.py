"""The embedded etcd: a single-member etcd child process in the controller's state dir.

It is the zero-configuration default (`swarmd controller` with no --etcd).
The controller supervises it: if it exits, it is started again on the same
data dir, and it is stopped when the controller stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import datetime
import logging
import os
import pathlib
import shutil
import signal
import time
import typing
from collections.abc import AsyncIterator

from shoal import errors, pki
from shoal.backoff import Backoff
from shoal.controller.store.etcd import Etcd, EtcdTLS
from shoal.metrics_http import split_hostport

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

#: How long a fresh etcd may take to answer before the controller gives up.
START_TIMEOUT = 30.0


def _command(data_dir: pathlib.Path, client: str, tls_dir: pathlib.Path) -> list[str]:
    host, port = split_hostport(client)
    peer = f"https://{host}:{port + 1}"
    ca, cert, key = (tls_dir / n for n in ("ca.pem", "server.pem", "server-key.pem"))
    return [
        "etcd",
        "--name=shoal",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=https://{host}:{port}",
        f"--advertise-client-urls=https://{host}:{port}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=shoal={peer}",
        # Clients and peers alike must present a certificate from the etcd CA.
        f"--trusted-ca-file={ca}",
        f"--cert-file={cert}",
        f"--key-file={key}",
        "--client-cert-auth",
        f"--peer-trusted-ca-file={ca}",
        f"--peer-cert-file={cert}",
        f"--peer-key-file={key}",
        "--peer-client-cert-auth",
        # Status reports rewrite task keys all day: keep 5 minutes of history.
        "--auto-compaction-mode=periodic",
        "--auto-compaction-retention=5m",
        "--quota-backend-bytes=8589934592",
        "--log-level=warn",
    ]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the controller dies, even by SIGKILL, so etcd is never orphaned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: pathlib.Path) -> str:
    """The end of etcd's log, to say why it would not start (a small local read)."""
    return path.read_text(errors="replace")[-500:] if path.exists() else ""


def _open_log(path: pathlib.Path) -> typing.BinaryIO:
    return open(path, "ab")  # noqa: SIM115 - handed to the child, closed by the caller


def ensure_tls(tls_dir: pathlib.Path, host: str) -> EtcdTLS:
    """The embedded etcd's own CA, server and client certificates, made once in the state dir.

    This CA is separate from the cluster's: the cluster's CA lives in etcd,
    so it cannot secure the way to etcd.
    """
    if not (tls_dir / "client.pem").exists():
        tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_pem, ca_key = pki.new_ca("shoal embedded etcd CA", "shoal-etcd")
        files = {"ca.pem": ca_pem}
        ips = tuple(dict.fromkeys(("127.0.0.1", host))) if host not in ("", "localhost") else ("127.0.0.1",)
        for name, cn in (("server", "etcd"), ("client", "controller")):
            key = pki.new_key()
            files[f"{name}.pem"] = pki.issue(
                ca_pem,
                ca_key,
                pki.csr_pem(key),
                common_name=cn,
                validity=datetime.timedelta(days=3650),
                dns_names=("localhost",),
                ip_addresses=ips,
            )
            files[f"{name}-key.pem"] = pki.key_pem(key)
        for name, data in files.items():
            fd = os.open(tls_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    read = (tls_dir / "ca.pem").read_bytes
    return EtcdTLS(read(), (tls_dir / "client.pem").read_bytes(), (tls_dir / "client-key.pem").read_bytes())


async def _wait_ready(url: str, tls: EtcdTLS, proc: asyncio.subprocess.Process, log_path: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    async with Etcd([url], timeout=1.0, tls=tls) as client:
        while True:
            if proc.returncode is not None:
                tail = _tail(log_path)
                raise errors.Unavailable(f"embedded etcd exited with status {proc.returncode}: {tail.strip()}")
            try:
                await client.status(timeout=1.0)
                return
            except errors.ShoalError:
                if time.monotonic() > deadline:
                    raise errors.Unavailable(f"embedded etcd did not answer within {START_TIMEOUT:g}s") from None
                await asyncio.sleep(0.1)


async def _start(
    data_dir: pathlib.Path, client: str, tls_dir: pathlib.Path, tls: EtcdTLS, log_path: pathlib.Path
) -> asyncio.subprocess.Process:
    with _open_log(log_path) as out:
        proc = await asyncio.create_subprocess_exec(
            *_command(data_dir, client, tls_dir),
            stdout=out,
            stderr=out,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    await _wait_ready(f"https://{client}", tls, proc, log_path)
    return proc


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def embedded_etcd(state_dir: str, client: str) -> AsyncIterator[tuple[str, EtcdTLS]]:
    """Run etcd, with TLS, while the context is open; yields its client URL and the client's TLS."""
    if shutil.which("etcd") is None:
        raise errors.FailedPrecondition("the etcd binary is not on PATH (install Debian's etcd-server, or pass --etcd)")
    base = pathlib.Path(state_dir)
    data_dir = base / "etcd"
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    log_path = base / "etcd.log"
    tls_dir = base / "etcd-tls"
    tls = ensure_tls(tls_dir, split_hostport(client)[0])
    proc = await _start(data_dir, client, tls_dir, tls, log_path)
    log.info("embedded etcd running (pid %d) at https://%s, data in %s", proc.pid, client, data_dir)

    async def supervise() -> None:
        nonlocal proc
        backoff = Backoff(base=0.5, cap=10.0)
        while True:
            code = await proc.wait()
            log.error("embedded etcd exited with status %s; restarting", code)
            while True:
                await asyncio.sleep(backoff.next())
                try:
                    proc = await _start(data_dir, client, tls_dir, tls, log_path)
                    backoff.reset()
                    break
                except errors.ShoalError as exc:
                    log.error("embedded etcd did not come back: %s", exc)

    supervisor = asyncio.create_task(supervise(), name="etcd-supervisor")
    try:
        yield f"https://{client}", tls
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await _stop(proc)
