"""The network benchmark's probe: run by this machine's Python inside a task's network namespace.

`bench/network.py` starts it with `nsenter --net=/proc/<container pid>/ns/net`, so its traffic takes exactly
the path the task's own would (its veth, its node's bridge, NAT and VXLAN). Each subcommand prints one JSON
document on stdout.

    python netprobe.py serve --sink 5001 --echo 5002
    python netprobe.py throughput HOST PORT --bytes N
    python netprobe.py latency HOST:PORT... --requests N
    python netprobe.py resolve NAME --server 127.0.0.11 --until-has ADDR | --until-lacks ADDR [--timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time

CHUNK = 64 * 1024
REQUEST = b"x" * 64


async def serve(sink: int, echo: int) -> None:
    async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(CHUNK):
            pass
        writer.write(b"!")  # the sender's clock stops when this arrives: everything was received
        await writer.drain()
        writer.close()

    async def reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.readexactly(len(REQUEST)):
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    servers = [await asyncio.start_server(drain, "0.0.0.0", sink), await asyncio.start_server(reply, "0.0.0.0", echo)]
    print(json.dumps({"serving": [sink, echo]}), flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def throughput(host: str, port: int, size: int) -> dict[str, float]:
    block = b"\0" * CHUNK
    start = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as s:
        sent = 0
        while sent < size:
            s.sendall(block)
            sent += len(block)
        s.shutdown(socket.SHUT_WR)
        assert s.recv(1) == b"!", "the sink closed before acknowledging"
    seconds = time.perf_counter() - start
    return {"bytes": sent, "seconds": seconds, "mbit_per_s": sent * 8 / seconds / 1e6}


def latency(targets: list[tuple[str, int]], requests: int) -> dict[str, list[float]]:
    """Each request on a new connection (as HTTP clients without keep-alive do): connect, 64 bytes there and back.

    Requests go to the targets in turn, so a burst of load on the machine falls on every path alike.
    """
    out: dict[str, list[float]] = {f"{h}:{p}": [] for h, p in targets}
    for n in range(requests * len(targets)):
        host, port = targets[n % len(targets)]
        start = time.perf_counter()
        with socket.create_connection((host, port), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(REQUEST)
            got = b""
            while len(got) < len(REQUEST):
                chunk = s.recv(len(REQUEST) - len(got))
                if not chunk:
                    raise ConnectionError("echo closed early")
                got += chunk
        out[f"{host}:{port}"].append((time.perf_counter() - start) * 1000)
    return out


def resolve(name: str, server: str, has: str | None, lacks: str | None, timeout: float) -> dict[str, object]:
    from dnslib import QTYPE, DNSRecord

    deadline = time.monotonic() + timeout
    answers: list[str] = []
    while time.monotonic() < deadline:
        try:
            reply = DNSRecord.parse(DNSRecord.question(name, "A").send(server, 53, timeout=1))
            answers = sorted(str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A)
        except (OSError, TimeoutError):
            answers = []
        if (has and has in answers) or (lacks and lacks not in answers):
            return {"at": time.time(), "answers": answers}
        time.sleep(0.01)
    return {"at": None, "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--sink", type=int, default=5001)
    p.add_argument("--echo", type=int, default=5002)
    p = sub.add_parser("throughput")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--bytes", type=int, default=256 << 20)
    p = sub.add_parser("latency")
    p.add_argument("targets", nargs="+", metavar="HOST:PORT")
    p.add_argument("--requests", type=int, default=500, help="per target")
    p = sub.add_parser("resolve")
    p.add_argument("name")
    p.add_argument("--server", default="127.0.0.11")
    p.add_argument("--until-has")
    p.add_argument("--until-lacks")
    p.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args.sink, args.echo))
    elif args.cmd == "throughput":
        print(json.dumps(throughput(args.host, args.port, args.bytes)))
    elif args.cmd == "latency":
        targets = [(t.rpartition(":")[0], int(t.rpartition(":")[2])) for t in args.targets]
        print(json.dumps(latency(targets, args.requests)))
    else:
        print(json.dumps(resolve(args.name, args.server, args.until_has, args.until_lacks, args.timeout)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
