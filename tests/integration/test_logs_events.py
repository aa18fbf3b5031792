"""`service logs`, `task logs` and `events` on real agents, dockerd and etcd."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aetcd import rpc

from shoal.controller.store.etcd import Etcd, EtcdTLS
from shoal.v1 import types_pb2
from tests.integration import harness
from tests.integration.harness import BIN, Cluster, wait_until
from tests.integration.test_lifecycle import SLEEP, converged, create


class Lines:
    """A swarmctl process that streams; its stdout and stderr lines are collected as they come."""

    def __init__(self, cluster: Cluster, *args: str) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "swarmctl"), "-H", cluster.controller_addr, "--tls-dir", str(cluster.admin_tls), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line.rstrip("\n"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)
        for t in self._threads:
            t.join(5)


@contextmanager
def streaming(cluster: Cluster, *args: str) -> Iterator[Lines]:
    lines = Lines(cluster, *args)
    try:
        yield lines
    finally:
        lines.stop()


def logs(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.ctl(*args)


# ---- logs --------------------------------------------------------------------------


def test_service_and_task_logs(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "talk", image, "--replicas", "2", "--replicas-max-per-node", "1",
        "--", "sh", "-c", "echo oops >&2; sleep 1; echo one; echo hello; sleep 100000",
    )  # fmt: skip
    wait_until(lambda: converged(cluster, service_id, 2, "talk"), 90, "2 replicas")
    tasks = {t.slot: t for t in cluster.control.running(service_id)}
    names = {n.id: n.name for n in cluster.control.nodes()}
    prefixes = {f"talk.{s}.{t.id[:12]}@{names[t.node_id]}" for s, t in tasks.items()}

    out = wait_until(
        lambda: (r := cluster.ctl("service", "logs", "talk")).stdout.count("hello") == 2 and r, 30, "both tasks' lines"
    )
    assert out.returncode == 0, out.stderr
    assert {line.split(" | ")[0] for line in out.stdout.splitlines()} == prefixes
    assert sorted(line.split(" | ")[1] for line in out.stdout.splitlines()) == ["hello", "hello", "one", "one"]
    # The containers' stderr goes to stderr, prefixed the same way.
    assert {line.split(" | ")[0] for line in out.stderr.splitlines()} == prefixes
    assert all(line.endswith(" | oops") for line in out.stderr.splitlines())

    tail = cluster.ctl("service", "logs", "talk", "--tail", "1", check=True)
    assert sorted(tail.stdout.splitlines()) == sorted(f"{p} | hello" for p in prefixes)  # each task's last line
    assert tail.stderr == ""
    stamped = cluster.ctl("service", "logs", "talk", "--timestamps", check=True).stdout
    assert all(re.search(r" \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (one|hello)$", x) for x in stamped.splitlines())
    assert cluster.ctl("service", "logs", "talk", "--since", "1h", check=True).stdout.count("hello") == 2
    assert cluster.ctl("service", "logs", "talk", "--since", "2099-01-01T00:00:00Z", check=True).stdout == ""

    one = tasks[1]
    task_out = cluster.ctl("task", "logs", one.id[:10], check=True)
    prefix = f"talk.1.{one.id[:12]}@{names[one.node_id]}"
    assert (task_out.stdout, task_out.stderr) == (f"{prefix} | one\n{prefix} | hello\n", f"{prefix} | oops\n")
    missing = cluster.ctl("service", "logs", "nope")
    assert missing.returncode == 1 and missing.stderr == "swarmctl: service 'nope' not found\n"


def test_following_logs_survives_a_lost_node_and_picks_up_new_tasks(cluster: Cluster, image: str) -> None:
    service_id = create(
        cluster, "ticker", image, "--mode", "global", "--stop-grace-period", "1s",
        "--", "sh", "-c", "while true; do echo tick; sleep 0.2; done",
    )  # fmt: skip
    wait_until(lambda: len(cluster.control.running(service_id)) == 3, 90, "a ticker on each node")

    def ticks(lines: Lines, node: str, after: int = 0) -> int:
        return sum(1 for line in lines.out[after:] if line.endswith(" | tick") and f"@{node} " in line)

    with streaming(cluster, "service", "logs", "-f", "--tail", "1", "ticker") as follow:
        wait_until(lambda: all(ticks(follow, n) >= 2 for n in ("n1", "n2", "n3")), 30, "ticks from all 3 nodes")

        # n1's agent dies: one warning, and the other nodes' lines keep coming.
        cluster.agents["n1"].kill()
        warning = wait_until(lambda: [e for e in follow.err if "warning" in e], 30, "a warning about n1")
        assert len(warning) == 1 and "node n1 is not available" in warning[0], follow.err
        seen = len(follow.out)
        wait_until(lambda: ticks(follow, "n2", seen) >= 3 and ticks(follow, "n3", seen) >= 3, 30, "more ticks")

        # Without -f, the gone node is one warning line too, and the command succeeds with the others.
        once = cluster.ctl("service", "logs", "--tail", "1", "ticker")
        assert once.returncode == 0, once.stderr
        assert [line for line in once.stderr.splitlines()] == [
            line for line in once.stderr.splitlines() if "node n1 is not available" in line
        ]
        assert len(once.stderr.splitlines()) == 1
        assert {line.split("@")[1].split(" ")[0] for line in once.stdout.splitlines()} == {"n2", "n3"}

        # n1 comes back: its new task's output joins the stream that is still open.
        old_ids = {t.id for t in cluster.control.tasks(service_id)}
        cluster.agents["n1"].start()
        wait_until(
            lambda: any(
                t.id not in old_ids and t.status.state == types_pb2.RUNNING for t in cluster.control.tasks(service_id)
            ),
            90,
            "a new ticker task on n1",
        )
        new_task = next(t for t in cluster.control.tasks(service_id) if t.id not in old_ids)
        wait_until(lambda: any(f".{new_task.id[:12]}@n1 | tick" in line for line in follow.out), 30, "the new task")
        assert follow.proc.poll() is None  # still following


# ---- events ------------------------------------------------------------------------


def parse(line: str) -> tuple[int, str, str, str]:
    """(revision, type, action, name) of an event line: REV TIME TYPE ACTION ID NAME ..."""
    words = line.split()
    return int(words[0]), words[2], words[3], words[5]


def compact_etcd(cluster: Cluster) -> int:
    """Compact the test etcd up to its current revision; return that revision."""
    ca, cert, key = harness.ETCD_TLS[cluster.etcd_url]

    async def run() -> int:
        async with Etcd([cluster.etcd_url], tls=EtcdTLS.from_files(str(ca), str(cert), str(key))) as etcd:
            revision = (await etcd.status()).header.revision
            await rpc.KVStub(etcd._channel).Compact(rpc.CompactionRequest(revision=revision, physical=True), timeout=10)
            return int(revision)

    return asyncio.run(run())


def test_events_stream_live_and_resume_from_a_revision(cluster: Cluster, image: str) -> None:
    with streaming(cluster, "events", "--filter", "type=service") as live:
        wait_until(lambda: live.proc.poll() is None and cluster.ctl("service", "ls").returncode == 0, 10, "events")
        service_id = create(cluster, "ev", image, *SLEEP)
        created = wait_until(
            lambda: [parse(x) for x in live.out if parse(x)[1:] == ("service", "create", "ev")], 30, "create event"
        )[0]
        cluster.ctl("service", "update", "ev", "--detach", "--label", "step=1", check=True)
        updated = wait_until(
            lambda: [parse(x) for x in live.out if parse(x)[1:] == ("service", "update", "ev")], 30, "update event"
        )[0]
        assert updated[0] > created[0]
        assert all(parse(x)[1] == "service" for x in live.out)  # the filter holds
    wait_until(lambda: converged(cluster, service_id, 1, "ev"), 90, "1 replica")

    # Resuming after the create replays what came after it, exactly once, then goes on live.
    with streaming(cluster, "events", "--since", str(created[0])) as resumed:
        wait_until(lambda: any(parse(x) == updated for x in resumed.out), 30, "the update, replayed")
        assert all(parse(x)[0] > created[0] for x in resumed.out)
        revisions = [parse(x)[0] for x in resumed.out]
        assert revisions == sorted(revisions)
        # The service's task went through its states on the way: each change is an event.
        wait_until(
            lambda: (
                any(parse(x)[1:3] == ("task", "create") for x in resumed.out)
                and any(parse(x)[1] == "task" and "state=running" in x for x in resumed.out)
            ),
            30,
            "the task's create and its RUNNING update",
        )
        cluster.ctl("service", "rm", "ev", check=True)
        wait_until(lambda: any(parse(x)[1:] == ("service", "remove", "ev") for x in resumed.out), 30, "remove")

    # A revision etcd no longer has is refused, saying so.
    compacted_at = compact_etcd(cluster)
    refused = cluster.ctl("events", "--since", str(created[0]))
    assert refused.returncode == 1
    assert f"revision {created[0]} is no longer in etcd's history" in refused.stderr
    assert f"--since {compacted_at - 1}" in refused.stderr
