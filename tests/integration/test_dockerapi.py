"""The unmodified docker CLIs and the Docker SDK for Python against a real cluster, through the controller's Docker API.

Each test drives a controller and three agents on the machine's dockerd with
clients nobody here wrote, and checks what they print against what Shoal's
own API and the engine say (containers really run, tasks really change).
Bad input through the CLI and raw HTTP gets Docker's status code, one
message, and leaves etcd byte for byte as it was.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from shoal.v1 import control_pb2, types_pb2
from tests.integration import harness
from tests.integration.dockerclients import (
    CLIS,
    DEBIAN_CLI,
    NEWER_CLI,
    Lines,
    cli,
    http_call,
    ok,
    tls_env,
)
from tests.integration.harness import Cluster, wait_until

pytestmark = pytest.mark.skipif(not CLIS, reason="no docker CLI on this machine")
NEWER = NEWER_CLI if NEWER_CLI in CLIS else DEBIAN_CLI


def _running(cluster: Cluster, name: str) -> list:
    return cluster.control.running(cluster.control.service(name).id)


def test_the_docker_clis_drive_a_service_through_its_life(cluster: Cluster, image: str) -> None:
    # Not detached: the Debian CLI follows the service with its own progress bars until they converge.
    created = cli(
        cluster,
        "service",
        "create",
        "--name",
        "web",
        "--replicas",
        "3",
        "--no-resolve-image",
        "--label",
        "tier=front",
        image,
        "sh",
        "-c",
        "while true; do echo hello-$HOSTNAME; sleep 1; done",
    )
    assert created.returncode == 0, created.stderr
    assert "converged" in created.stderr + created.stdout
    assert len(_running(cluster, "web")) == 3
    assert len(cluster.running_containers("web")) == 3  # on the agents' engine
    # Detached, with the newer CLI (which negotiates down to the served API version).
    service_id = ok(
        cli(
            cluster,
            "service",
            "create",
            "-d",
            "--name",
            "job",
            "--mode",
            "global",
            "--no-resolve-image",
            image,
            "sleep",
            "600",
            binary=NEWER,
        )
    ).strip()
    assert service_id == cluster.control.service("job").id
    wait_until(lambda: len(_running(cluster, "job")) == 3, 60, "the global service on every node")

    for binary in CLIS:
        listed = ok(cli(cluster, "service", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}", binary=binary))
        assert sorted(listed.split("\n")[:2]) == ["job global 3/3", "web replicated 3/3"], listed
    assert ok(cli(cluster, "service", "ls", "--format", "{{.ID}}", "--filter", "label=tier=front")).split() == [
        cluster.control.service("web").id[:12]
    ]
    ps = ok(cli(cluster, "service", "ps", "web", "--format", "{{.Name}} {{.Node}} {{.CurrentState}}"))
    assert sorted(line.split()[0] for line in ps.splitlines()) == ["web.1", "web.2", "web.3"]
    assert {line.split()[1] for line in ps.splitlines()} <= {"n1", "n2", "n3"}
    doc = json.loads(ok(cli(cluster, "service", "inspect", "web")))[0]
    assert doc["Spec"]["Labels"] == {"tier": "front"}
    assert doc["Version"]["Index"] == cluster.control.service("web").meta.version

    # Update (an env var: every task replaced), scale, roll back: each followed to convergence by the CLI.
    ok(cli(cluster, "service", "update", "--env-add", "COLOR=blue", "web", binary=NEWER))
    tasks = _running(cluster, "web")
    assert len(tasks) == 3 and all("COLOR=blue" in t.spec.container.env for t in tasks)
    ok(cli(cluster, "service", "scale", "web=4"))
    wait_until(lambda: len(_running(cluster, "web")) == 4, 60, "4 replicas")
    ok(cli(cluster, "service", "rollback", "web"))
    assert cluster.control.service("web").spec.replicated.replicas == 3
    assert cluster.control.service("web").update_status.state == types_pb2.UpdateStatus.ROLLBACK_COMPLETED

    # logs -f prefixes each line with the task and node, as against dockerd.
    follow = Lines(cluster, "service", "logs", "-f", "--tail", "1", "web")
    try:
        wait_until(
            lambda: any(re.match(r"web\.\d\.\w+@n\d\s+\| hello-", line) for line in follow.lines),
            30,
            "followed log lines",
        )
    finally:
        follow.close()
    tail = ok(cli(cluster, "service", "logs", "--tail", "1", "--timestamps", "web", binary=NEWER))
    assert re.search(r"^\d{4}-\d\d-\d\dT[\d:.]+Z web\.\d\.\w+@n\d +\| hello-", tail, re.M), tail

    ok(cli(cluster, "service", "rm", "web", "job"))
    assert cluster.control.stub.ListServices(control_pb2.ListServicesRequest(), timeout=5).services == []
    wait_until(lambda: not cluster.running_containers(), 60, "every container gone")


def test_nodes_secrets_configs_info_and_events_over_tls(cluster: Cluster) -> None:
    remote = tls_env(cluster)  # TCP, the admin bundle as DOCKER_CERT_PATH, as for a remote dockerd
    info = json.loads(ok(cli(cluster, "info", "--format", "{{json .Swarm}}", env=remote)))
    assert info["LocalNodeState"] == "active" and info["ControlAvailable"] is True
    assert (info["Nodes"], info["Managers"]) == (3, 1)
    cluster_info = cluster.control.stub.GetClusterInfo(control_pb2.GetClusterInfoRequest(), timeout=5)
    assert info["Cluster"]["ID"] == cluster_info.cluster.id

    nodes = ok(cli(cluster, "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}", env=remote))
    assert sorted(nodes.splitlines()) == ["n1 Ready Active", "n2 Ready Active", "n3 Ready Active"]
    ok(cli(cluster, "node", "update", "--availability", "drain", "--label-add", "zone=a", "n3", binary=NEWER))
    spec = cluster.control.stub.GetNode(control_pb2.GetNodeRequest(ref="n3"), timeout=5).node.spec
    assert (spec.availability, dict(spec.labels)) == (types_pb2.NodeSpec.DRAIN, {"zone": "a"})
    doc = json.loads(ok(cli(cluster, "node", "inspect", "n3")))[0]
    assert (doc["Spec"]["Availability"], doc["Spec"]["Labels"], doc["Spec"]["Role"]) == (
        "drain",
        {"zone": "a"},
        "worker",
    )
    promoted = cli(cluster, "node", "promote", "n3")
    assert promoted.returncode != 0 and "cannot become 'manager'" in promoted.stderr
    refused = cli(cluster, "node", "rm", "n3")
    assert refused.returncode != 0 and "is READY" in refused.stderr
    cluster.agents["n3"].kill()
    wait_until(
        lambda: "Down" in ok(cli(cluster, "node", "ls", "--filter", "name=n3", "--format", "{{.Status}}")),
        30,
        "n3 DOWN",
    )
    ok(cli(cluster, "node", "rm", "n3"))
    assert sorted(n.name for n in cluster.control.nodes()) == ["n1", "n2"]

    # Events: watched with `docker events` while secrets come and go (a new one each try until one shows).
    data = cluster.tmp / "secret.txt"
    data.write_text("s3cret")
    made: list[str] = []

    def create_secret() -> bool:
        made.append(f"ev-{len(made)}")
        ok(cli(cluster, "secret", "create", "--label", "k=v", made[-1], str(data)))
        return True

    events = Lines(
        cluster, "events", "--filter", "type=secret", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"
    )
    try:
        # The stream may open after the first create: make new secrets until one shows.
        wait_until(
            lambda: create_secret() and any(line.startswith("secret create ev-") for line in events.lines),
            30,
            "a secret create event",
            interval=0.5,
        )
    finally:
        events.close()
    listed = ok(cli(cluster, "secret", "ls", "--format", "{{.Name}}", "--filter", "label=k=v", env=remote))
    assert sorted(listed.split()) == sorted(made)
    assert "s3cret" not in ok(cli(cluster, "secret", "inspect", made[0]))
    # Labels change (the same data may come back, as stack deploy sends it); other data is refused.
    doc = json.loads(ok(cli(cluster, "secret", "inspect", made[0])))[0]
    same = {"Name": made[0], "Labels": {"k": "w"}, "Data": base64.b64encode(b"s3cret").decode()}
    path = f"/v1.41/secrets/{doc['ID']}/update?version={doc['Version']['Index']}"
    assert http_call(cluster, "POST", path, same) == (200, "")
    status, refused = http_call(cluster, "POST", path, {**same, "Data": base64.b64encode(b"other").decode()})
    assert status == 400 and "only its labels can be updated, not its data" in refused["message"], refused
    secret = cluster.control.stub.GetSecret(control_pb2.GetFileRequest(ref=made[0]), timeout=5).secret
    assert dict(secret.spec.labels) == {"k": "w"}
    for name in made:
        ok(cli(cluster, "secret", "rm", name, binary=NEWER))
    ok(cli(cluster, "config", "create", "app.conf", str(data)))
    assert (
        ok(cli(cluster, "config", "inspect", "--format", '{{printf "%s" .Spec.Data}}', "app.conf")).strip() == "s3cret"
    )
    assert ok(cli(cluster, "config", "ls", "--format", "{{.Name}}")).split() == ["app.conf"]
    ok(cli(cluster, "config", "rm", "app.conf"))
    assert cluster.control.stub.ListSecrets(control_pb2.ListFilesRequest(), timeout=5).secrets == []


def test_docker_sdk_for_python(cluster: Cluster, image: str) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=f"unix://{cluster.docker_sock}")
    try:
        secret = client.secrets.create(name="db-pass", data=b"s3cret", labels={"app": "db"})
        svc = client.services.create(
            image,
            command=["sleep", "600"],
            name="sdk",
            mode=docker.types.ServiceMode("replicated", 2),
            labels={"app": "db"},
            secrets=[docker.types.SecretReference(secret.id, "db-pass")],
        )
        wait_until(lambda: len([t for t in svc.tasks() if t["Status"]["State"] == "running"]) == 2, 60, "2 tasks")
        stored = cluster.control.service("sdk")
        assert [s.name for s in stored.spec.task.container.secrets] == ["db-pass"]
        svc.reload()
        svc.scale(3)
        wait_until(lambda: len(_running(cluster, "sdk")) == 3, 60, "3 running")
        assert [s.name for s in client.services.list(filters={"label": "app=db"})] == ["sdk"]
        assert sorted(n.attrs["Description"]["Hostname"] for n in client.nodes.list()) == ["n1", "n2", "n3"]
        assert [s.name for s in client.secrets.list()] == ["db-pass"]
        with pytest.raises(docker.errors.APIError, match="in use by service"):
            secret.remove()
        svc.remove()
        secret.remove()
        assert client.secrets.list() == []
    finally:
        client.close()


def test_bad_input_gets_dockers_code_and_one_message_and_changes_nothing(cluster: Cluster, image: str) -> None:
    ok(cli(cluster, "service", "create", "-d", "--name", "dup", "--replicas", "0", "--no-resolve-image", image))
    version = cluster.control.service("dup").meta.version
    before = harness.etcd_dump(cluster)
    base = {"Name": "bad", "TaskTemplate": {"ContainerSpec": {"Image": image}}}
    cases = [
        ("POST", "/v1.41/services/create", {**base, "Bogus": 1}, 400, "unknown field Bogus"),
        (
            "POST",
            "/v1.41/services/create",
            {**base, "TaskTemplate": {"ContainerSpec": {"Image": image, "Mounts": [{"Target": "/x"}]}}},
            400,
            "TaskTemplate.ContainerSpec.Mounts is not supported by Shoal",
        ),
        (
            "POST",
            "/v1.41/services/create",
            {**base, "Mode": {"Replicated": {"Replicas": "three"}}},
            400,
            "Mode.Replicated.Replicas: expected an integer, got string",
        ),
        ("POST", "/v1.41/services/create", {**base, "Name": "dup"}, 409, 'service "dup" already exists'),
        ("POST", "/v1.41/services/create", {**base, "Name": "Bad Name"}, 400, "service name 'Bad Name' is invalid"),
        (
            "POST",
            f"/v1.41/services/dup/update?version={version - 1}",
            {**base, "Name": "dup"},
            409,
            "changed since it was read",
        ),
        ("POST", "/v1.41/services/dup/update", {**base, "Name": "dup"}, 400, "the version parameter is required"),
        ("GET", "/v1.41/services/nope", None, 404, "service 'nope' not found"),
        ("POST", "/v1.41/secrets/create", {"Name": "s", "Data": "!!"}, 400, "Data: not valid base64"),
        ("POST", "/v1.41/nodes/n1/update?version=1", {"Role": "manager"}, 400, "cannot become 'manager'"),
        ("GET", '/v1.41/tasks?filters={"colour":["red"]}', None, 400, "invalid filter 'colour'"),
        ("GET", "/v1.12/info", None, 400, "client version 1.12 is too old. Minimum supported API version is 1.40"),
        ("GET", "/v1.99/info", None, 400, "client version 1.99 is too new. Maximum supported API version is 1.45"),
        ("GET", "/v1.41/containers/json", None, 404, "page not found"),
    ]
    for method, path, body, status, message in cases:
        got, doc = http_call(cluster, method, path, body)
        assert got == status, (path, body, got, doc)
        assert isinstance(doc, dict) and list(doc) == ["message"] and "\n" not in doc["message"], doc
        assert message in doc["message"], (path, doc)
    got, doc = http_call(cluster, "POST", "/v1.41/services/create", raw=b"{not json")
    assert got == 400 and "not valid JSON" in doc["message"]
    got, doc = http_call(
        cluster, "POST", "/v1.41/secrets/create", raw=b'{"Name": "big", "Data": "' + b"A" * (3 << 20) + b'"}'
    )
    assert got == 413 and "larger than" in doc["message"]
    # The same through the CLI: one line, "Error response from daemon: <message>".
    for args, message in [
        (
            ["service", "create", "--name", "m", "--mount", "type=volume,src=v,dst=/v", image],
            "TaskTemplate.ContainerSpec.Mounts is not supported by Shoal",
        ),
        (
            ["service", "create", "--name", "p", "--publish", "8080:80", image],
            "EndpointSpec.Ports[0].PublishMode 'ingress' is not supported by Shoal",
        ),
        (["service", "create", "--name", "dup", image], 'service "dup" already exists'),
        # A 404 is one the CLI recognises, and words itself.
        (["secret", "rm", "nope"], "No such secret: nope"),
    ]:
        result = cli(cluster, *args)
        assert result.returncode != 0
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert harness.etcd_dump(cluster) == before


def _has_networks() -> bool:
    return "CreateNetwork" in control_pb2.DESCRIPTOR.services_by_name["Control"].methods_by_name


STACK = """
version: "3.8"
services:
  web:
    image: {image}
    command: ["sh", "-c", "cat /run/secrets/pw /etc/app.conf; sleep 600"]
    environment: [ROUND={round}]
    deploy:
      replicas: {replicas}
      resources:
        limits: {{cpus: "0.5", memory: 64M}}
        reservations: {{memory: 16M}}
      placement:
        constraints: ["node.role == worker"]
        preferences: [{{spread: node.labels.zone}}]
      update_config: {{parallelism: 1, delay: 1s, order: start-first}}
      restart_policy: {{condition: on-failure, delay: 2s, max_attempts: 3}}
    secrets: [pw]
    configs: [{{source: conf, target: /etc/app.conf}}]
  worker:
    image: {image}
    command: ["sleep", "600"]
    deploy:
      mode: global
secrets:
  pw: {{file: ./pw.txt}}
configs:
  conf: {{file: ./app.conf}}
"""


@pytest.mark.skipif(
    not _has_networks(),
    reason="docker stack deploy creates <stack>_default, an overlay network: "
    "waits on the networks work (Control CreateNetwork) and its mapping of /networks",
)
def test_stack_deploy(cluster: Cluster, image: str) -> None:
    (cluster.tmp / "pw.txt").write_text("pw")
    (cluster.tmp / "app.conf").write_text("conf")
    compose = cluster.tmp / "stack.yml"
    compose.write_text(STACK.format(image=image, replicas=2, round=1))
    ok(cli(cluster, "stack", "deploy", "-c", str(compose), "st"))
    wait_until(
        lambda: len(_running(cluster, "st_web")) == 2 and len(_running(cluster, "st_worker")) == 3,
        90,
        "the stack's tasks running",
    )
    web = cluster.control.service("st_web").spec
    assert (
        web.task.resources.limits.nano_cpus == 500_000_000 and web.task.resources.reservations.memory_bytes == 16 << 20
    )
    assert list(web.task.placement.constraints) == ["node.role == worker"]
    assert [p.spread for p in web.task.placement.preferences] == ["node.labels.zone"]
    assert web.update.order == types_pb2.UpdateConfig.START_FIRST
    assert web.task.restart.condition == types_pb2.RestartPolicy.ON_FAILURE and web.task.restart.max_attempts == 3
    assert [s.name for s in web.task.container.secrets] == ["st_pw"]
    assert [(c.name, c.target) for c in web.task.container.configs] == [("st_conf", "/etc/app.conf")]
    services = ok(cli(cluster, "stack", "services", "st", "--format", "{{.Name}} {{.Replicas}}"))
    assert sorted(services.splitlines()) == ["st_web 2/2", "st_worker 3/3"]
    ps = ok(cli(cluster, "stack", "ps", "st", "--format", "{{.Name}}", binary=NEWER))
    assert len(ps.split()) == 5
    assert len(cluster.running_containers("st_web")) == 2  # on the agents' engine
    # A second deploy updates in place.
    compose.write_text(STACK.format(image=image, replicas=3, round=2))
    ok(cli(cluster, "stack", "deploy", "-c", str(compose), "st"))
    wait_until(
        lambda: len([t for t in _running(cluster, "st_web") if "ROUND=2" in t.spec.container.env]) == 3,
        90,
        "the updated web tasks",
    )
    ok(cli(cluster, "stack", "rm", "st"))
    wait_until(lambda: not cluster.running_containers(), 60, "every container gone")
    assert cluster.control.stub.ListSecrets(control_pb2.ListFilesRequest(), timeout=5).secrets == []
