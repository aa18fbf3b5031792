"""Private registries and pinned images, with a real registry (TLS, htpasswd) and the real dockerd.

Credentials go from the user's Docker config to the controller (sealed), and
from there only to the node that runs the service; a pull without them fails
with the registry's reason. Tags are pinned to digests, so a tag pushed again
during a rollout changes nothing that runs.
"""

from __future__ import annotations

import json
import pathlib
import re
import secrets
from collections.abc import Iterator

import grpc
import pytest

from shoal.v1 import control_pb2, types_pb2
from tests.integration import harness, isolated, registries
from tests.integration.harness import Cluster, docker, wait_until
from tests.integration.test_lifecycle import SLEEP, create


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[registries.PrivateRegistry]:
    harness.check_docker()
    with registries.private_registry(tmp_path_factory.mktemp("private-registry")) as registry:
        yield registry


def _tasks_in(cluster: Cluster, service_id: str, state: int) -> list[types_pb2.TaskStatus]:
    return [t.status for t in cluster.control.tasks(service_id) if t.status.state == state]


def _files_hold(root: pathlib.Path, needle: bytes) -> list[pathlib.Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def _events(cluster: Cluster) -> bytes:
    """Every event etcd still has for this cluster (the shared etcd may be compacted: start where it says)."""
    since, out = 1, []
    while True:
        try:
            for event in cluster.control.stub.Events(control_pb2.EventsRequest(since_revision=since), timeout=3):
                out.append(event.SerializeToString())
        except grpc.RpcError as exc:
            resume = re.search(r"--since (\d+)", exc.details() or "")
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION and resume and not out:
                since = int(resume.group(1))
                continue
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc.details()
        assert out, "no events were replayed"
        return b"".join(out)


def test_private_registry_credentials(
    cluster: Cluster, private: registries.PrivateRegistry, tmp_path: pathlib.Path
) -> None:
    repo = f"shoal-test/private-{secrets.token_hex(3)}"
    ref = private.ref(f"{repo}:1")
    digest = registries.push_image(ref, "private", tmp_path, config=private.docker_config)
    password = private.password.encode()
    try:
        # Without credentials: the tag cannot be pinned (a warning), and the pull is refused with the
        # registry's reason; the task is REJECTED and replaced per the restart policy; no agent crashes.
        pids = {name: proc.proc.pid for name, proc in cluster.agents.items()}  # type: ignore[union-attr]
        plain = cluster.ctl("service", "create", "--detach", "--name", "anon", "--image", ref,
                            "--restart-delay", "1s", "--restart-max-attempts", "2", *SLEEP, check=True)
        assert "could not be pinned" in plain.stderr and "wants credentials" in plain.stderr
        anon = plain.stdout.strip()
        rejected = wait_until(lambda: len(_tasks_in(cluster, anon, types_pb2.REJECTED)) >= 2
                              and _tasks_in(cluster, anon, types_pb2.REJECTED), 90, "two rejected pulls")
        assert all("no basic auth credentials" in s.err for s in rejected), [s.err for s in rejected]
        ps = cluster.ctl("service", "ps", "--no-trunc", "anon", check=True).stdout
        assert "Rejected" in ps and "no basic auth credentials" in ps
        # Wrong credentials: refused too, with the registry's word for it.
        wrong = tmp_path / "wrong-config"
        wrong.mkdir()
        (wrong / "config.json").write_text(json.dumps({"auths": {private.host: {"username": "shoal",
                                                                                  "password": "not-it"}}}))
        bad = cluster.ctl("service", "create", "--detach", "--name", "wrong", "--image", ref, "--with-registry-auth",
                          "--restart-condition", "none", *SLEEP, env={**private.env(), "DOCKER_CONFIG": str(wrong)},
                          check=True)
        (bad_status,) = wait_until(lambda: _tasks_in(cluster, bad.stdout.strip(), types_pb2.REJECTED), 60,
                                   "the pull with wrong credentials to be refused")
        assert "unauthorized" in bad_status.err.lower(), bad_status.err
        cluster.ctl("service", "rm", "anon", "wrong", check=True)
        assert {name: proc.proc.pid for name, proc in cluster.agents.items()} == pids  # type: ignore[union-attr]
        assert all(proc.running for proc in cluster.agents.values())

        # With the user's Docker config: pinned with the credentials, and pulled by the one node that runs it.
        created = cluster.ctl("service", "create", "--detach", "--name", "private", "--image", ref,
                              "--with-registry-auth", "--constraint", "node.hostname==n1", *SLEEP,
                              env=private.env(), check=True)
        service_id = created.stdout.strip()
        assert not created.stderr.strip(), created.stderr
        wait_until(lambda: cluster.control.running(service_id), 90, "the private image to run on n1")
        spec = cluster.control.service(service_id).spec.task.container
        assert spec.image == f"{ref}@{digest}" and spec.registry_auth_id
        (container,) = cluster.running_containers("private")
        assert docker("exec", container["id"], "cat", "/marker").stdout == "private"

        # Where the password is: in n1's agent's memory, which needs it; nowhere else.
        agent_pid = {name: proc.proc.pid for name, proc in cluster.agents.items()}  # type: ignore[union-attr]
        assert isolated.memory_holds(agent_pid["n1"], password)  # the scan finds it where it is
        for name in ("n2", "n3"):
            assert not isolated.memory_holds(agent_pid[name], password), f"{name}'s agent holds the password"
        for name in ("n1", "n2", "n3"):
            assert password not in cluster.agents[name].log().encode(), f"{name}'s log shows the password"
            assert not _files_hold(cluster.tmp / name, password), f"{name}'s state dir holds the password"
        assert password not in cluster.controller.log().encode()  # type: ignore[union-attr]
        assert not [k for k, v in harness.etcd_dump(cluster).items() if password in v], "stored in the clear"
        for args in (("service", "inspect", "private"), ("service", "ls"), ("service", "ps", "private"),
                     ("task", "ls", "-a")):
            assert private.password not in cluster.ctl("--format", "json", *args, check=True).stdout
        assert password not in cluster.control.stub.GetService(
            control_pb2.GetServiceRequest(ref="private"), timeout=5).SerializeToString()
        assert password not in _events(cluster)
        assert "Registry auth" in cluster.ctl("service", "inspect", "private", check=True).stdout

        # ResolveImage: what the Docker API's distribution endpoint asks.
        stub = cluster.control.stub
        auth = types_pb2.RegistryAuth(username=private.username, password=private.password)
        answer = stub.ResolveImage(control_pb2.ResolveImageRequest(image=ref, registry_auth=auth), timeout=10)
        assert answer.digest == digest and answer.pinned == f"{ref}@{digest}"
        for image, given, code in (
            (ref, None, grpc.StatusCode.PERMISSION_DENIED),
            (private.ref(f"{repo}:nosuch"), auth, grpc.StatusCode.NOT_FOUND),
            (f"127.0.0.1:{harness.free_port()}/x:1", None, grpc.StatusCode.UNAVAILABLE),
        ):
            with pytest.raises(grpc.RpcError) as err:
                stub.ResolveImage(control_pb2.ResolveImageRequest(image=image, registry_auth=given), timeout=10)
            assert err.value.code() == code, (image, err.value.details())

        # Gone with the service: credentials deleted, the node forgets them.
        cluster.ctl("service", "rm", "private", check=True)
        wait_until(lambda: not cluster.control.tasks(service_id), 60, "the tasks to be deleted")
        assert not [k for k in harness.etcd_dump(cluster) if b"/registry_credentials/" in k]
    finally:
        registries.forget_images(private.ref(repo))


def test_tags_are_pinned_to_digests(cluster: Cluster, image: str, tmp_path: pathlib.Path) -> None:
    repo = image.rsplit("/", 1)[0] + f"/moving-{secrets.token_hex(3)}"
    ref = f"{repo}:1"
    first = registries.push_image(ref, "one", tmp_path)
    try:
        service_id = create(cluster, "pinned", ref, "--replicas", "2", "--update-delay", "2s",
                            "--stop-grace-period", "1s", *SLEEP)
        wait_until(lambda: len(cluster.control.running(service_id)) == 2, 90, "2 replicas")
        assert cluster.control.service(service_id).spec.task.container.image == f"{ref}@{first}"
        inspect = cluster.ctl("service", "inspect", "pinned", check=True).stdout
        assert ref in inspect and first in inspect
        # A rollout, during which the tag is pushed again: every task runs the pinned bytes throughout.
        cluster.ctl("service", "update", "--detach", "pinned", "--env", "V=2", check=True)
        second = registries.push_image(ref, "two", tmp_path)
        assert second != first
        version = cluster.control.service(service_id).spec_version

        def rolled() -> bool:
            running = cluster.control.running(service_id)
            return len(running) == 2 and all(t.spec_version == version for t in running)

        wait_until(rolled, 120, "the rollout to finish")
        for c in cluster.running_containers("pinned"):
            assert docker("exec", c["id"], "cat", "/marker").stdout == "one"
        assert all(t.spec.container.image.endswith(first) for t in cluster.control.running(service_id))
        assert first[:19] in cluster.ctl("service", "ps", "pinned", check=True).stdout  # the image each task runs
        # Naming the tag again follows it; --no-resolve-image keeps it as a tag.
        cluster.ctl("service", "update", "--detach", "pinned", "--image", ref, check=True)
        assert cluster.control.service(service_id).spec.task.container.image == f"{ref}@{second}"
        cluster.ctl("service", "update", "--detach", "pinned", "--image", ref, "--no-resolve-image", check=True)
        assert cluster.control.service(service_id).spec.task.container.image == ref
        # A registry that cannot be reached: created all the same, unpinned, with a warning.
        nowhere = f"127.0.0.1:{harness.free_port()}/nowhere:1"
        result = cluster.ctl("service", "create", "--detach", "--name", "nowhere", "--image", nowhere, check=True)
        (warning,) = result.stderr.strip().splitlines()
        assert warning.startswith("swarmctl: warning:") and "could not be pinned" in warning
        assert cluster.control.service("nowhere").spec.task.container.image == nowhere
    finally:
        registries.forget_images(repo)
