"""Volumes, bind mounts and tmpfs in services, on the real dockerd; `swarmctl volume`; bad mount specs."""

from __future__ import annotations

import json
import pathlib
import secrets

import grpc
import pytest

from shoal.v1 import control_pb2, types_pb2
from tests.integration import harness, isolated
from tests.integration.harness import Cluster, docker, wait_until
from tests.integration.test_lifecycle import SLEEP, create


def _running_container(cluster: Cluster, service: str, old: set[str] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    def found() -> dict[str, str] | None:
        running = [c for c in cluster.running_containers(service) if c["id"] not in old]
        return running[0] if len(running) == 1 and len(cluster.running_containers(service)) == 1 else None

    return wait_until(found, 90, f"one new running container of {service}")


def _exec(container: dict[str, str], script: str, check: bool = True) -> harness.subprocess.CompletedProcess[str]:
    return docker("exec", container["id"], "sh", "-c", script, check=check)


def test_volumes_bind_mounts_and_tmpfs(cluster: Cluster, image: str, tmp_path: pathlib.Path) -> None:
    volume = f"sst-data-{secrets.token_hex(4)}"
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "config").write_text("from the host\n")
    service_id = create(
        cluster, "store", image, "--constraint", "node.hostname==n1", "--restart-delay", "1s",
        "--mount", f"type=volume,source={volume},target=/data,volume-label=app=store",
        "--mount", "type=volume,target=/scratch",
        "--mount", f"type=bind,source={rw},target=/rw",
        "--mount", f"type=bind,source={ro},target=/ro,readonly",
        "--mount", "type=tmpfs,target=/tmp/fast,tmpfs-size=1m,tmpfs-mode=1770",
        *SLEEP,
    )
    first = _running_container(cluster, "store")
    _exec(first, "echo kept > /data/file && echo gone > /scratch/file && echo written > /rw/new")
    # Bind mounts: read-write reaches the host, read-only is read-only.
    assert (rw / "new").read_text() == "written\n"
    assert _exec(first, "cat /ro/config").stdout == "from the host\n"
    assert _exec(first, "echo x > /ro/config", check=False).returncode != 0
    # tmpfs of 1 MiB: mounted with that size and mode, and a 2 MiB file does not fit.
    mounts = _exec(first, "grep ' /tmp/fast ' /proc/mounts").stdout
    assert "tmpfs" in mounts and "size=1024k" in mounts and "mode=1770" in mounts, mounts
    assert _exec(first, "dd if=/dev/zero of=/tmp/fast/big bs=1k count=2048", check=False).returncode != 0
    engine_mounts = json.loads(docker("inspect", first["id"]).stdout)[0]["Mounts"]
    anonymous = next(m["Name"] for m in engine_mounts if m["Destination"] == "/scratch")

    # The named volume is Shoal's, on n1, and in use.
    (listed,) = [v for v in cluster.ctl_json("volume", "ls", "--node", "n1") if v["name"] == volume]
    assert listed["nodeName"] == "n1" and listed["labels"]["app"] == "store" and listed["containers"]
    assert "shoal.node.id" in listed["labels"]
    busy = cluster.ctl("volume", "rm", volume, "--node", "n1")
    assert busy.returncode == 1 and "in use" in busy.stderr, busy.stderr

    # A restart (the container killed) and a rolling update on the same node find the file again.
    docker("kill", first["id"])
    second = _running_container(cluster, "store", {first["id"]})
    assert _exec(second, "cat /data/file").stdout == "kept\n"
    assert _exec(second, "cat /scratch/file 2>/dev/null || echo fresh").stdout == "fresh\n"  # its own anonymous volume
    cluster.ctl("service", "update", "--detach", "store", "--env", "V=2", check=True)
    third = _running_container(cluster, "store", {first["id"], second["id"]})
    assert "V=2" in json.loads(docker("inspect", third["id"]).stdout)[0]["Config"]["Env"]
    assert _exec(third, "cat /data/file").stdout == "kept\n"

    # Removing the service removes its containers, and so their anonymous volumes; the named one stays.
    cluster.ctl("service", "rm", "store", check=True)
    wait_until(lambda: not [c for c in cluster.containers() if c["service"] == "store"], 60, "no container of store")
    wait_until(lambda: not cluster.control.tasks(service_id), 30, "the tasks to be deleted")
    assert docker("volume", "inspect", anonymous, check=False).returncode != 0
    assert cluster.ctl_json("volume", "inspect", volume)["name"] == volume
    cluster.ctl("volume", "rm", volume, "--node", "n1", check=True)
    assert volume not in cluster.ctl("volume", "ls", check=True).stdout
    gone = cluster.ctl("volume", "inspect", volume)
    assert gone.returncode == 1 and "no Shoal volume" in gone.stderr


def test_a_missing_bind_source_rejects_only_that_nodes_task(
    cluster: Cluster, image: str, tmp_path: pathlib.Path
) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "data").mkdir(parents=True)
    (shadow / "data" / "hello").write_text("hi\n")
    with isolated.dockerd_hiding(tmp_path / "n4-host", shadow, image) as docker_host:
        cluster.start_agent("n4", docker_host=docker_host)
        cluster.wait_ready("n4")
        # The tag as is: the isolated engine has the image by that name, and no way to the registry.
        service_id = create(
            cluster, "binder", image, "--mode", "global", "--no-resolve-image", "--restart-delay", "1s",
            "--mount", f"type=bind,source={shadow / 'data'},target=/data,readonly", *SLEEP,
        )
        n4 = cluster.node_id("n4")

        def settled() -> bool:
            tasks = cluster.control.tasks(service_id)
            running = {t.node_id for t in tasks if t.status.state == types_pb2.RUNNING}
            rejected = [t for t in tasks if t.node_id == n4 and t.status.state == types_pb2.REJECTED]
            others = {cluster.node_id(n) for n in ("n1", "n2", "n3")}
            return running == others and len(rejected) >= 2  # and the restart policy tried again

        wait_until(settled, 90, "n1-n3 running, n4's task rejected twice")
        rejected = [t for t in cluster.control.tasks(service_id) if t.status.state == types_pb2.REJECTED]
        assert all(t.node_id == n4 for t in rejected)
        assert "bind source path does not exist" in rejected[0].status.err
        ps = cluster.ctl("service", "ps", "--no-trunc", "binder", check=True).stdout
        assert "bind source path does not exist" in ps
        for c in cluster.running_containers("binder"):
            assert docker("exec", c["id"], "cat", "/data/hello").stdout == "hi\n"
        cluster.ctl("service", "rm", "binder", check=True)
        wait_until(lambda: not cluster.control.tasks(service_id), 60, "the tasks to be deleted")
        cluster.agents["n4"].kill()


BAD_MOUNTS = [
    # (flag value, what the one-line error says); the first ones are refused by swarmctl's parser.
    ("type=nfs,target=/x", "invalid mount type"),
    ("source=data", "target is required"),
    ("type=bind,source=/x,target=/y,volume-nocopy", "cannot mix 'volume-*' options"),
    ("type=tmpfs,target=/t,tmpfs-size=lots", "tmpfs-size"),
    ("type=tmpfs,target=/t,tmpfs-mode=999", "tmpfs-mode"),
    ("type=volume,target=/t,shared", "must be a key=value pair"),
    # ... and these by the controller.
    ("type=volume,source=data,target=relative", "must be an absolute path"),
    ("type=bind,source=relative/dir,target=/x", "must be an absolute path"),
    ("type=bind,target=/x", "needs a source path"),
    ("type=tmpfs,source=x,target=/t", "takes no source"),
    ("type=volume,source=no/slash,target=/x", "invalid volume name"),
    ("type=volume,source=data,target=/", "root"),
    ("type=bind,source=/x,target=/y,bind-propagation=sideways", "unknown bind propagation"),
    ("type=tmpfs,target=/t,tmpfs-mode=17777", "not a file mode"),
    ("type=volume,source=data,target=/x,volume-driver=bad driver", "invalid volume driver"),
]


def test_every_bad_mount_spec_is_refused_and_nothing_written(cluster: Cluster, image: str) -> None:
    create(cluster, "keep", image, "--no-resolve-image", *SLEEP)
    wait_until(lambda: cluster.control.running(cluster.control.service("keep").id), 90, "keep to run")
    cases = [(["--mount", value], why) for value, why in BAD_MOUNTS]
    cases.append((["--mount", "type=volume,target=/same", "--mount", "type=tmpfs,target=/same/"], "two mounts"))
    cases.append(([arg for i in range(65) for arg in ("--mount", f"type=tmpfs,target=/m{i}")], "at most 64 mounts"))
    for verb in ("create", "update"):
        before = harness.etcd_dump(cluster)
        for flags, why in cases:
            args = ["--name", "bad", "--image", image] if verb == "create" else ["keep"]
            result = cluster.ctl("service", verb, "--detach", *args, *flags, *SLEEP)
            assert result.returncode in (1, 2), (flags, result.stdout)
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and why in lines[0], (flags, result.stderr)
        after = harness.etcd_dump(cluster)
        # Only the controller's own bookkeeping moved (leases of members): no object changed.
        assert {k: v for k, v in after.items() if b"/controllers/" not in k} == {
            k: v for k, v in before.items() if b"/controllers/" not in k
        }, verb
    # Straight through the API, what the CLI parser would not let through is refused too.
    spec = cluster.control.service("keep").spec
    for field, value in (("size_bytes", -1), ("mode", 0o10000)):
        bad = types_pb2.ServiceSpec()
        bad.CopyFrom(spec)
        bad.name = "bad-api"
        mount = bad.task.container.mounts.add(type=types_pb2.Mount.TMPFS, target="/t")
        setattr(mount.tmpfs, field, value)
        with pytest.raises(grpc.RpcError) as err:
            cluster.control.stub.CreateService(control_pb2.CreateServiceRequest(spec=bad), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    mixed = types_pb2.ServiceSpec()
    mixed.CopyFrom(spec)
    mixed.name = "bad-api"
    mixed.task.container.mounts.add(type=types_pb2.Mount.BIND, source="/x", target="/y").volume.nocopy = True
    with pytest.raises(grpc.RpcError) as err:
        cluster.control.stub.CreateService(control_pb2.CreateServiceRequest(spec=mixed), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "volume options" in (err.value.details() or "")
