"""What the benchmarks measure: each process's CPU and memory from /proc (`Meter`, `Usage`), and
Prometheus endpoints (`scrape`, `histogram_quantile`, the etcd traffic of `Traffic`).

bench/hollowlab.py's `HollowLab.meter()` meters its processes; the benchmarks print the tables.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import re
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.hollowlab import HollowLab

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# ---- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (and its reaped children), in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def memory(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) of a process, in bytes."""
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", pathlib.Path(f"/proc/{pid}/status").read_text(), re.M))
    return int(found.get("VmRSS", 0)) * 1024, int(found.get("VmHWM", 0)) * 1024


@dataclasses.dataclass
class Usage:
    """A process's CPU and memory over a measured window."""

    name: str
    cpu_s: float
    wall_s: float
    rss: int
    peak_rss: int

    @property
    def cores(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_s": round(self.cpu_s, 2),
            "cores": round(self.cores, 3),
            "rss_mib": round(self.rss / 2**20, 1),
            "peak_rss_mib": round(self.peak_rss / 2**20, 1),
        }


class Meter:
    """CPU and memory of named processes between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self._t0 = 0.0
        self._cpu0: dict[str, float] = {}

    def start(self) -> Meter:
        self._t0 = time.monotonic()
        self._cpu0 = {n: _safe(cpu_seconds, p, 0.0) for n, p in self.pids.items()}
        self._cpu0["bench"] = time.process_time()
        return self

    def stop(self) -> dict[str, Usage]:
        wall = time.monotonic() - self._t0
        out = {}
        for name, pid in self.pids.items():
            cpu = _safe(cpu_seconds, pid, None)
            if cpu is None:
                continue  # it was killed during the window
            rss, peak = _safe(memory, pid, (0, 0))
            out[name] = Usage(name, cpu - self._cpu0[name], wall, rss, peak)
        rss, peak = memory(os.getpid())
        out["bench"] = Usage("bench", time.process_time() - self._cpu0["bench"], wall, rss, peak)
        return out


def _safe(fn, pid, default):  # type: ignore[no-untyped-def]
    try:
        return fn(pid)
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return default


def usage_table(usages: dict[str, Usage]) -> str:
    lines = [f"  {'process':<22} {'CPU s':>8} {'cores':>6} {'RSS MiB':>8} {'peak MiB':>9}"]
    for u in usages.values():
        lines.append(
            f"  {u.name:<22} {u.cpu_s:>8.1f} {u.cores:>6.2f} {u.rss / 2**20:>8.0f} {u.peak_rss / 2**20:>9.0f}"
        )
    return "\n".join(lines)


# ---- Prometheus text -------------------------------------------------------------------------


def scrape(addr: str, timeout: float = 10.0) -> dict[str, float]:
    """Every sample of a /metrics endpoint, by `name{labels}` as written."""
    import urllib.request

    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=timeout) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def histogram_quantile(before: dict[str, float], after: dict[str, float], name: str, q: float) -> float | None:
    """The q-quantile of a histogram's observations between two scrapes (upper bucket bound, as Prometheus),
    over every label set together (q=1: the bound the longest observation fell under)."""
    by_bound: dict[float, float] = collections.defaultdict(float)
    for key, value in after.items():
        m = re.fullmatch(rf'{re.escape(name)}_bucket\{{(?:.*,)?le="([^"]+)"(?:,.*)?\}}', key)
        if m:
            by_bound[float(m.group(1))] += value - before.get(key, 0.0)
    buckets = sorted(by_bound.items())
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    for bound, count in buckets:
        if count >= q * total:
            return bound
    return buckets[-1][0]


#: Counters that say how much control-plane traffic a run caused: (process, metric, label).
TRAFFIC = (
    ("controller", "shoal_dispatcher_registrations_total", "agent sessions opened"),
    ("controller", "shoal_dispatcher_status_updates_total", "task statuses accepted by the controller"),
    ("hollow", "shoal_agent_status_report_batch_size_count", "status reports (messages)"),
    ("hollow", "shoal_agent_heartbeat_duration_seconds_count", "heartbeats (messages)"),
    ("controller", "shoal_dispatcher_assignment_batch_size_count", "assignment messages sent to agents"),
    ("controller", "shoal_dispatcher_assignment_batch_size_sum", "assignment changes in them"),
    ("controller", "shoal_dispatcher_nodes_down_total", "nodes marked DOWN"),
    ("controller", "shoal_controller_leader_changes_total", "leadership terms begun"),
    ("controller", 'shoal_gc_pause_seconds_count{generation="2"}', "controller full garbage collections"),
    ("controller", "shoal_store_write_window_cuts_total", "write window cuts (slow etcd answers)"),
    ("controller", "shoal_store_etcd_revision", "store revisions (transactions that wrote)"),
)


class Traffic:
    """The TRAFFIC counters of the controller and every hollow process, from `start()` to `stop()`,
    and how late each process's event loop ran meanwhile."""

    def __init__(self, lab: HollowLab) -> None:
        self._lab = lab
        self._before: dict[str, dict[str, float]] = {}
        self.lag: dict[str, dict[str, float | None]] = {}

    def _read(self) -> dict[str, dict[str, float]]:
        out = {"controller": self._lab.controller_metrics()}
        out.update({name: scrape(addr) for name, addr in self._lab.hollow_metrics.items()})
        return out

    def start(self) -> Traffic:
        self._before = self._read()
        return self

    def stop(self) -> dict[str, float]:
        """The counters' increase; `lag` then holds each process's event-loop lag p50/p99/max (bucket bounds)."""
        after = self._read()
        counts = {}
        for proc, metric, label in TRAFFIC:
            names = ["controller"] if proc == "controller" else [n for n in after if n != "controller"]
            counts[label] = sum(after[n].get(metric, 0.0) - self._before.get(n, {}).get(metric, 0.0) for n in names)
        before = self._before.get("controller", {})
        for generation in range(3):
            key = f'shoal_gc_pause_seconds_sum{{generation="{generation}"}}'
            spent = after["controller"].get(key, 0.0) - before.get(key, 0.0)
            counts[f"controller time in generation {generation} collections (ms)"] = 1000 * spent
        gc_pauses = (before, after["controller"], "shoal_gc_pause_seconds")
        self.lag["controller GC pause"] = {"p100": histogram_quantile(*gc_pauses, 1.0)}
        txns = [
            {k: v for k, v in scraped.items() if 'operation="txn"' in k}
            for scraped in (before, after["controller"])
        ]
        self.lag["etcd transaction"] = _spread(*txns, "shoal_store_etcd_request_duration_seconds")
        for name, samples in after.items():
            prefix = "shoal_controller" if name == "controller" else "shoal_agent"
            self.lag[name] = _spread(self._before.get(name, {}), samples, f"{prefix}_event_loop_lag_seconds")
        return counts


def _spread(before: dict[str, float], after: dict[str, float], name: str) -> dict[str, float | None]:
    """A histogram's p50, p99 and max between two scrapes (bucket bounds)."""
    return {f"p{round(q * 100)}": histogram_quantile(before, after, name, q) for q in (0.5, 0.99, 1.0)}


def traffic_table(counts: dict[str, float], lag: dict[str, dict[str, float | None]]) -> str:
    lines = [f"  {label:<42} {value:>10,.0f}" for label, value in counts.items()]
    def ms(v: float | None) -> str:
        return "-" if v is None else ">10000" if v == float("inf") else f"{v * 1000:.0f}"

    for name, q in lag.items():
        if name.endswith("GC pause"):
            lines.append(f"  {name + ', longest (ms, bucket bound)':<42} {ms(q['p100']):>10}")
            continue
        what = "etcd transaction p50/p99/max ms, controller" if name == "etcd transaction" else (
            "event-loop lag p50/p99/max ms, " + name
        )
        shown = " / ".join(ms(v) for v in q.values())
        lines.append(f"  {what:<42} {shown:>10}")
    return "\n".join(lines)
