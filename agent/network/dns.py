"""The DNS server a node serves on each of its overlay networks (UDP and TCP, port 53 of its address there).

Containers reach it through Docker's embedded resolver, which forwards what
it does not know itself to the servers of the container's `Dns` setting: the
node's address on the container's first network. Names of the network's
services and tasks (`desired.dns_records`) are answered from the node's
current items, with a TTL of 0, so a task that stops leaves the answers as
soon as the node hears of it. A name under `tasks.` or `.<network>` that is
not known gets NXDOMAIN; any other name is forwarded to the asking task's own
upstream servers (`--dns`), else the node's (/etc/resolv.conf). dnslib does
the wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import struct
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger(__name__)

PORT = 53
#: How long a forwarded query waits for the upstream's answer.
FORWARD_TIMEOUT = 2.0
#: Larger answers than this go over TCP (RFC 1035), truncated over UDP.
UDP_LIMIT = 512

#: Upstream servers for a query from this source address.
Upstreams = Callable[[str], Sequence[str]]


def resolv_conf_servers(path: str = "/etc/resolv.conf") -> list[str]:
    """The nameservers of a resolv.conf (the node's own resolver)."""
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except OSError:
        return []
    return [parts[1] for line in lines if len(parts := line.split()) >= 2 and parts[0] == "nameserver"]


class Zone:
    """The names one network's server answers, and the suffixes it is authoritative for."""

    def __init__(self, network: str, records: Mapping[str, Sequence[str]]) -> None:
        self.network = network.lower()
        self.records = {k.lower(): tuple(v) for k, v in records.items()}

    def owns(self, name: str) -> bool:
        return name in self.records or name.startswith("tasks.") or name.endswith(f".{self.network}")


def answer(query: DNSRecord, zone: Zone) -> DNSRecord | None:
    """The reply from the zone, or None if the query must be forwarded."""
    name = str(query.q.qname).rstrip(".").lower()
    if not zone.owns(name):
        return None
    reply = query.reply()
    addresses = zone.records.get(name)
    if addresses is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif query.q.qtype in (QTYPE.A, QTYPE.ANY):
        for addr in addresses:
            reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(addr), ttl=0))
    return reply


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._server.spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        out = await self._server.resolve(data, addr[0])
        if out is None or self.transport is None:
            return
        if len(out) > UDP_LIMIT:
            reply = DNSRecord.parse(out)
            reply.rr = []
            reply.header.tc = 1
            out = reply.pack()
        self.transport.sendto(out, addr)


class _Forwarder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class DnsServer:
    """One network's server on one address; its zone is replaced as the network's item changes."""

    def __init__(self, address: str, zone: Zone, upstreams: Upstreams) -> None:
        self.address = address
        self.zone = zone
        self._upstreams = upstreams
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(self.address, PORT))
        try:
            self._tcp = await asyncio.start_server(self._serve_tcp, self.address, PORT)
        except OSError:
            self._udp.close()
            raise
        log.info("DNS server on %s:%d for network %s", self.address, PORT, self.zone.network)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(job)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def resolve(self, data: bytes, source: str) -> bytes | None:
        """The answer to a wire-format query from `source` (None: drop it)."""
        try:
            query = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises several kinds on garbage; a bad packet is dropped
            return None
        reply = answer(query, self.zone)
        if reply is not None:
            return bytes(reply.pack())
        return await self._forward(query, data, source)

    async def _forward(self, query: DNSRecord, data: bytes, source: str) -> bytes:
        loop = asyncio.get_running_loop()
        for server in self._upstreams(source):
            transport = None
            try:
                transport, proto = await loop.create_datagram_endpoint(_Forwarder, remote_addr=(server, PORT))
                transport.sendto(data)
                async with asyncio.timeout(FORWARD_TIMEOUT):
                    return await proto.answer
            except (OSError, TimeoutError):
                continue
            finally:
                if transport is not None:
                    transport.close()
        reply = query.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return bytes(reply.pack())

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = (writer.get_extra_info("peername") or ("", 0))[0]
        try:
            while True:
                size = struct.unpack(">H", await reader.readexactly(2))[0]
                out = await self.resolve(await reader.readexactly(size), source)
                if out is None:
                    break
                writer.write(struct.pack(">H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
