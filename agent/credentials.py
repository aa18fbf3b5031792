"""The node's identity: its certificate, obtained by joining with a token and renewed before it expires.

On first start the agent has no certificate: it fetches the cluster's root
CA from the controller's join port, checks it against the digest in the join
token, sends a certificate request for a fresh key with the token, and keeps
what it gets in `<state-dir>/tls` (the key never leaves the node). The
certificate's CN is the node ID the controller chose. From then on every
connection is mutual TLS with that certificate, which is renewed at a random
point between 50% and 80% of its lifetime; sessions in progress keep their
connection, new ones use the new certificate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import grpc

from shoal import backoff, errors, pki, remotes, tls
from shoal.agent.settings import AgentSettings
from shoal.v1 import ca_pb2, ca_pb2_grpc

log = logging.getLogger(__name__)


class NodeRemoved(Exception):
    """The cluster refuses this node's certificate: it was removed and must join again."""


def join_addr(settings: AgentSettings) -> str:
    """Where to join: --join-addr, or the first controller's port plus one."""
    return settings.join_addr or _join_port_of(settings.controllers[0])


def _join_port_of(controller: str) -> str:
    """A controller's join address by the default convention: its gRPC port plus one."""
    host, _, port = controller.rpartition(":")
    return f"{host}:{int(port) + 1}"


def _write_node_id(path: Path, node_id: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".node_id.")
    with os.fdopen(fd, "w") as f:
        f.write(node_id + "\n")
    os.replace(tmp, path)


async def join(settings: AgentSettings) -> tls.Bundle:
    """Join the cluster with the join token; retried while the controller cannot be reached."""
    if not settings.join_token:
        raise errors.FailedPrecondition(
            f"this node has no certificate in {settings.tls_dir} and no --join-token to get one "
            "(swarmctl cluster join-token worker prints it)"
        )
    token = pki.parse_token(settings.join_token)
    # Without --join-addr, try every controller's join port in turn; a follower names the leader.
    candidates = remotes.Remotes(
        [settings.join_addr] if settings.join_addr else [_join_port_of(c) for c in settings.controllers]
    )
    delay = backoff.Backoff(base=settings.backoff_base, cap=settings.backoff_cap)
    while True:
        addr = candidates.current
        try:
            return await _join_once(settings, addr, token)
        except errors.NotLeader as exc:
            if exc.leader and not settings.join_addr:
                candidates.prefer(_join_port_of(exc.leader))
                continue
            candidates.failed(addr)
        except errors.Unavailable as exc:
            candidates.failed(addr)
            wait = delay.next()
            log.warning("cannot join through %s (%s); retrying in %.1fs", addr, exc, wait)
            await asyncio.sleep(wait)


async def _join_once(settings: AgentSettings, addr: str, token: pki.Token) -> tls.Bundle:
    ca_pem = await asyncio.to_thread(tls.fetch_root_ca, addr, token.ca_digest, settings.rpc_timeout)
    key = pki.new_key()
    request = ca_pb2.JoinRequest(
        token=settings.join_token, csr_pem=pki.csr_pem(key), node_name=settings.node_name, labels=settings.labels
    )
    async with tls.secure_channel(addr, None, ca_pem=ca_pem) as channel:
        try:
            reply = await ca_pb2_grpc.CAStub(channel).Join(request, timeout=settings.rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            trailing = exc.trailing_metadata() or ()
            leader = next((v for k, v in trailing if k == errors.LEADER_METADATA_KEY and isinstance(v, str)), "")
            raise errors.from_code(exc.code(), f"join refused by {addr}: {exc.details()}", leader) from None
    bundle = tls.Bundle(reply.ca_pem, reply.certificate_pem, pki.key_pem(key))
    bundle.save(settings.tls_dir)
    _write_node_id(settings.node_id_path, reply.node_id)
    log.info("joined cluster %s as node %s (%s)", reply.cluster_id, reply.node_id, settings.node_name)
    return bundle


class Credentials:
    """The current certificate; `renew_forever` keeps it fresh."""

    def __init__(self, settings: AgentSettings, bundle: tls.Bundle) -> None:
        self._settings = settings
        self.bundle = bundle
        #: Called with each renewed bundle (the agent's own server presents it).
        self.on_renew: list[Callable[[tls.Bundle], None]] = []

    @property
    def node_id(self) -> str:
        return self.bundle.identity.id

    def channel(self, addr: str) -> grpc.aio.Channel:
        """A mutual-TLS channel to a controller with the current certificate."""
        # The gRPC core answers pings outside the controller's event loop, so a busy controller keeps
        # its connections while a dead or paused one loses them within two keepalive intervals.
        ms = int(self._settings.keepalive * 1000)
        return tls.secure_channel(
            addr,
            self.bundle,
            options=[
                ("grpc.keepalive_time_ms", ms),
                ("grpc.keepalive_timeout_ms", ms),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0),
            ],
        )

    async def renew_once(self, addr: str) -> None:
        """Trade the current certificate for a new one (a new key) through the controller at `addr`."""
        key = pki.new_key()
        async with self.channel(addr) as channel:
            reply = await ca_pb2_grpc.CAStub(channel).RenewCertificate(
                ca_pb2.RenewCertificateRequest(csr_pem=pki.csr_pem(key)), timeout=self._settings.rpc_timeout
            )
        bundle = tls.Bundle(reply.ca_pem, reply.certificate_pem, pki.key_pem(key))
        bundle.save(self._settings.tls_dir)
        self.bundle = bundle
        for callback in self.on_renew:
            callback(bundle)
        log.info("renewed the node certificate; it is valid until %s", bundle.cert.not_valid_after_utc)

    async def renew_forever(self, controller: Callable[[], str]) -> NoReturn:
        """Renew at 50-80% of each certificate's lifetime, retrying with backoff when it fails."""
        delay = backoff.Backoff(base=self._settings.backoff_base, cap=self._settings.backoff_cap)
        while True:
            await asyncio.sleep(self.bundle.renew_in())
            while True:
                addr = controller()
                try:
                    await self.renew_once(addr)
                    delay.reset()
                    break
                except grpc.aio.AioRpcError as exc:
                    wait = delay.next()
                    log.warning(
                        "certificate renewal through %s failed (%s); retrying in %.1fs",
                        addr,
                        exc.details() or exc.code().name,
                        wait,
                    )
                    await asyncio.sleep(wait)


async def load_or_join(settings: AgentSettings) -> Credentials:
    """The node's credentials from its state dir, joining the cluster first if it has none."""
    if tls.Bundle.exists(settings.tls_dir):
        bundle = tls.Bundle.load(settings.tls_dir)
    else:
        bundle = await join(settings)
    return Credentials(settings, bundle)
