"""Streaming endpoints: service and task logs (Docker's multiplexed stream) and /events.

Logs come from the Control API's Logs stream. Each line is one frame of
Docker's stdout/stderr multiplexing (an 8-byte header: stream, three zero
bytes, big-endian length), optionally prefixed by its RFC 3339 timestamp and
by the `details` Docker's CLI parses to name the task and node
(`com.docker.swarm.task.id=...`).

Events come from the resumable Events stream, for services, nodes, secrets
and configs (dockerd sends no task events), as Docker's event messages, one
JSON object per line. Shoal's stream resumes by etcd revision, not by time:
`since` in the past is refused rather than ignored; each event carries its
revision as the `shoal.revision` attribute.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator

from aiohttp import web

from shoal import errors
from shoal.controller.dockerapi import context, filters, mapping, server
from shoal.v1 import agent_pb2, control_pb2

log = logging.getLogger(__name__)

EVENT_TYPES = ("service", "node", "secret", "config")
#: dockerd's event filters; those naming kinds Shoal has no events of match nothing.
EVENT_FILTERS = (
    "type",
    "event",
    "scope",
    "service",
    "node",
    "secret",
    "config",
    "label",
    "container",
    "image",
    "volume",
    "network",
    "plugin",
    "daemon",
)
#: How far in the past `since` may be and still mean "from now on" (clients' clocks and round trips).
_SINCE_SLACK = 2.0


def frame(stream: int, payload: bytes) -> bytes:
    """One frame of Docker's multiplexed stream (1 = stdout, 2 = stderr)."""
    return bytes((stream, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def _rfc3339(ts: object) -> str:
    from google.protobuf import timestamp_pb2

    assert isinstance(ts, timestamp_pb2.Timestamp)
    when = datetime.datetime.fromtimestamp(ts.seconds, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.nanos:09d}Z"


def log_payload(msg: control_pb2.LogMessage, service_id: str, *, timestamps: bool, details: bool) -> bytes:
    """A line as dockerd writes it: `[TIMESTAMP ][DETAILS ]TEXT\\n`."""
    parts: list[bytes] = []
    if timestamps:
        parts.append(_rfc3339(msg.timestamp).encode())
    if details:
        pairs = (
            ("com.docker.swarm.node.id", msg.node_id),
            ("com.docker.swarm.service.id", service_id),
            ("com.docker.swarm.task.id", msg.task_id),
        )
        parts.append(",".join(f"{k}={urllib.parse.quote(v)}" for k, v in pairs).encode())
    data = msg.data if msg.data.endswith(b"\n") else msg.data + b"\n"
    return b" ".join([*parts, data]) if parts else data


def _since(raw: str | None, what: str) -> float | None:
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise errors.InvalidArgument(
            f"invalid {what} {raw!r}: expected a unix timestamp (seconds[.nanoseconds])"
        ) from None


def logs_request(request: web.Request, **ref: str) -> control_pb2.LogsRequest:
    """The Control API's LogsRequest for Docker's logs query."""
    out = control_pb2.LogsRequest(
        follow=server.query_bool(request, "follow"),
        service_ref=ref.get("service_ref", ""),
        task_ref=ref.get("task_ref", ""),
    )
    tail = request.query.get("tail", "all")
    if tail not in ("all", ""):
        try:
            out.tail = int(tail)
        except ValueError:
            raise errors.InvalidArgument(f"invalid tail {tail!r}: expected a number of lines or all") from None
        if out.tail < 0:
            raise errors.InvalidArgument(f"invalid tail {tail!r}: expected a number of lines or all")
    since = _since(request.query.get("since"), "since")
    if since:
        out.since.FromNanoseconds(int(since * 1e9))
    return out


async def stream_logs(request: web.Request, ctx: context.Context, **ref: str) -> web.StreamResponse:
    """GET /services/{id}/logs and /tasks/{id}/logs."""
    want_out, want_err = server.query_bool(request, "stdout"), server.query_bool(request, "stderr")
    if not (want_out or want_err):
        raise errors.InvalidArgument("Bad parameters: you must choose at least one stream")
    req = logs_request(request, **ref)
    no_old_lines = request.query.get("tail") == "0"
    timestamps, details = server.query_bool(request, "timestamps"), server.query_bool(request, "details")
    if ref.get("service_ref"):
        service_id = (await ctx.control.get_service(ref["service_ref"])).service.id
    else:
        service_id = (await ctx.control.get_task(ref["task_ref"])).task.service_id
    if no_old_lines:
        # Docker's tail=0: nothing that was written before now.
        req.since.FromNanoseconds(time.time_ns())
    stream = ctx.control.stream(lambda s: s.Logs, req, timeout=None if req.follow else 60.0)
    resp = web.StreamResponse(headers={"Content-Type": _stream_type(request)})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    try:
        async for msg in stream:
            if msg.warning:
                # The CLI parses every line's details: a warning has no task to name, so it goes to the log only.
                log.info("docker API logs of %s: %s", service_id, msg.warning)
                continue
            err = msg.stream == agent_pb2.LogLine.STDERR
            if (err and not want_err) or (not err and not want_out):
                continue
            payload = log_payload(msg, service_id, timestamps=timestamps, details=details)
            await resp.write(frame(2 if err else 1, payload))
    except errors.ShoalError as exc:
        # The headers are gone: all that is left is to end the stream (and say why in the log).
        log.warning("docker API logs of %s ended: %s", service_id, exc)
    await resp.write_eof()
    return resp


def _stream_type(request: web.Request) -> str:
    version = request.match_info.get("_version", "")
    # API 1.42 named the multiplexed stream's media type; older clients expect the raw one.
    old = version and tuple(int(x) for x in version[1:-1].split(".")) < (1, 42)
    return "application/vnd.docker.raw-stream" if old else "application/vnd.docker.multiplexed-stream"


def event_message(event: control_pb2.Event) -> mapping.Json:
    """A Shoal event as Docker's event message."""
    obj = getattr(event, event.WhichOneof("object") or "service")
    updated = obj.meta.updated_at if event.action != "remove" and obj.meta.updated_at.seconds else None
    nanos = updated.ToNanoseconds() if updated is not None else time.time_ns()
    attributes = {"name": event.name, "shoal.revision": str(event.revision)}
    return {
        "Type": event.type,
        "Action": event.action,
        "Actor": {"ID": event.id, "Attributes": attributes},
        "scope": "swarm",
        "time": nanos // 1_000_000_000,
        "timeNano": nanos,
    }


def event_matches(msg: mapping.Json, f: filters.Filters) -> bool:
    """dockerd's event filter: each filter given must match (by ID or name prefix for object filters)."""
    actor = msg["Actor"]
    name = actor["Attributes"]["name"]
    if not (filters.exact(f, "type", msg["Type"]) and filters.exact(f, "event", msg["Action"])):
        return False
    if not filters.exact(f, "scope", "swarm") or not filters.labels(f, "label", actor["Attributes"]):
        return False
    for key in ("service", "node", "secret", "config", "container", "image", "volume", "network", "plugin", "daemon"):
        wanted = f.get(key)
        if wanted and not (msg["Type"] == key and any(actor["ID"].startswith(w) or name == w for w in wanted)):
            return False
    return True


async def stream_events(request: web.Request, ctx: context.Context) -> web.StreamResponse:
    """GET /events: swarm events from now on, until `until` (if given) or the client leaves."""
    f = filters.parse(request.query.get("filters"), EVENT_FILTERS)
    since, until = _since(request.query.get("since"), "since"), _since(request.query.get("until"), "until")
    now = time.time()
    if since is not None and since < now - _SINCE_SLACK:
        raise errors.InvalidArgument(
            "since: Shoal's event stream resumes by etcd revision, not by time, so it cannot replay events "
            "from a past time; leave since out for events from now on (swarmctl events --since REV replays)"
        )
    types = [t for t in EVENT_TYPES if filters.exact(f, "type", t)]
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    if not types or (until is not None and until <= now):
        await resp.write_eof()
        return resp
    stream = ctx.control.stream(lambda s: s.Events, control_pb2.EventsRequest(types=types), timeout=None)
    try:
        async with asyncio.timeout(None if until is None else until - now):
            await _send_events(resp, stream, f)
    except TimeoutError:
        pass  # `until` reached: the stream ends, as dockerd's does
    except errors.ShoalError as exc:
        log.warning("docker API events stream ended: %s", exc)
    await resp.write_eof()
    return resp


async def _send_events(resp: web.StreamResponse, stream: AsyncIterator[control_pb2.Event], f: filters.Filters) -> None:
    async for event in stream:
        msg = event_message(event)
        if event_matches(msg, f):
            await resp.write(json.dumps(msg).encode() + b"\n")


def add_routes(app: web.Application, ctx: context.Context) -> None:
    async def service_logs(request: web.Request) -> web.StreamResponse:
        return await stream_logs(request, ctx, service_ref=request.match_info["id"])

    async def task_logs(request: web.Request) -> web.StreamResponse:
        return await stream_logs(request, ctx, task_ref=request.match_info["id"])

    async def events(request: web.Request) -> web.StreamResponse:
        return await stream_events(request, ctx)

    app.router.add_get(server.route("/services/{id}/logs"), service_logs)
    app.router.add_get(server.route("/tasks/{id}/logs"), task_logs)
    app.router.add_get(server.route("/events"), events)
