"""The Docker Engine's container stats document, read the way `docker stats` reads it.

`GET /containers/{id}/stats?stream=false&one-shot=true` answers at once with
one reading (no `precpu_stats`: the agent's sampler computes CPU rates from
its own successive readings). Memory in use excludes the inactive page
cache, as the docker CLI does, on cgroup v1 and v2 alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shoal.agent.executor import base


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def memory_in_use(memory_stats: Mapping[str, Any]) -> int:
    """Usage minus inactive page cache (cgroup v2 `inactive_file`, v1 `total_inactive_file`)."""
    usage = _int(memory_stats.get("usage"))
    stats = memory_stats.get("stats") or {}
    for key in ("inactive_file", "total_inactive_file"):
        if key in stats:
            cache = _int(stats[key])
            return usage - cache if cache < usage else usage
    return usage


def parse(raw: Mapping[str, Any]) -> base.ContainerStats | None:
    """A ContainerStats from the engine's document; None for a container that is not running."""
    cpu = (raw.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory_stats = raw.get("memory_stats") or {}
    if not cpu.get("total_usage") and not memory_stats:
        # A stopped container answers with an all-zero document.
        return None
    networks = raw.get("networks") or {}
    return base.ContainerStats(
        cpu_seconds=_int(cpu.get("total_usage")) / 1e9,
        memory_bytes=memory_in_use(memory_stats),
        memory_limit_bytes=_int(memory_stats.get("limit")),
        network_rx_bytes=sum(_int(n.get("rx_bytes")) for n in networks.values()),
        network_tx_bytes=sum(_int(n.get("tx_bytes")) for n in networks.values()),
        pids=_int((raw.get("pids_stats") or {}).get("current")),
    )


def pulled_bytes(progress: Sequence[Mapping[str, Any]]) -> int:
    """Bytes downloaded by a pull, from its progress messages: each new layer's size, counted once."""
    sizes: dict[str, int] = {}
    for message in progress:
        layer = message.get("id")
        total = _int((message.get("progressDetail") or {}).get("total"))
        if layer and message.get("status") == "Downloading" and total:
            sizes[layer] = max(sizes.get(layer, 0), total)
    return sum(sizes.values())
