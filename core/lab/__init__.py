"""`swarmd lab`: a cluster of real hosts on this machine, one network namespace per host.

`lab up --nodes N --controllers C --etcd-members E` builds it (see builder.py
for what runs where), installs swarmctl's admin bundle and controller list
where swarmctl looks by default, and can add a Prometheus (`--prometheus`).
`lab status` lists hosts, addresses and process health; `lab down` removes
everything, also what a crashed lab left behind.
"""

from __future__ import annotations

import pathlib
import shutil
import urllib.request

import click

from shoal import errors, tls
from shoal.lab import net
from shoal.lab import prometheus as lab_prometheus
from shoal.lab.builder import Lab, check_prerequisites, wait
from shoal.lab.spec import CONTROLLER_METRICS_PORT, DOCKER_API_PORT, LabSpec
from shoal.v1 import control_pb2, types_pb2

DEFAULT_DIR = "/var/lib/shoal/lab"

__all__ = ["Lab", "LabSpec", "group"]


class LabError(click.ClickException):
    """One line on stderr, exit 1."""


def _spec_from_record(root: pathlib.Path, prefix: str, subnet: str) -> LabSpec:
    """The spec a lab was built with (from its record), or one from the given names if the record is gone."""
    lab = Lab(LabSpec(root, prefix=prefix, subnet=subnet))
    shape = lab.procs.load().get("spec", {})
    return LabSpec(root, **shape) if shape else lab.spec


_PREFIX = click.option("--prefix", default="shoal", show_default=True, help="Names of the lab's interfaces.")
_SUBNET = click.option("--subnet", default="10.77.0.0/24", show_default=True, help="The lab network (a /24).")


def hosts_file() -> pathlib.Path:
    """Where swarmctl finds its default controller list (next to its default TLS bundle)."""
    return tls.default_client_dir().parent / "hosts"


@click.group()
def group() -> None:
    """A lab cluster of real hosts on this machine (network namespaces, a dockerd per node)."""


@group.command()
@click.option("--nodes", default=3, show_default=True, type=click.IntRange(1, 99), help="Node hosts (agents).")
@click.option("--controllers", default=1, show_default=True, type=click.IntRange(1, 9))
@click.option("--etcd-members", default=1, show_default=True, type=click.IntRange(1, 9))
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
@click.option("--heartbeat-period", default="5s", show_default=True)
@click.option("--prometheus", is_flag=True, help=f"Also run Prometheus on {lab_prometheus.ADDR}, scraping the lab.")
@_PREFIX
@_SUBNET
@click.option("--no-client-files", is_flag=True, help="Do not install swarmctl's admin bundle and controller list.")
def up(
    nodes: int,
    controllers: int,
    etcd_members: int,
    root: pathlib.Path,
    heartbeat_period: str,
    prometheus: bool,
    prefix: str,
    subnet: str,
    no_client_files: bool,
) -> None:
    """Build the lab and wait until every node is READY."""
    try:
        if prometheus and shutil.which("prometheus") is None:
            raise errors.FailedPrecondition("prometheus is not installed: apt-get install prometheus")
        spec = LabSpec(
            root,
            nodes=nodes,
            controllers=controllers,
            etcd_members=etcd_members,
            heartbeat_period=heartbeat_period,
            prefix=prefix,
            subnet=subnet,
        )
        lab = Lab(spec)
        lab.up(log=click.echo)
        if not no_client_files:
            admin = tls.default_client_dir()
            tls.Bundle.load(lab.admin_dir).save(admin)
            hosts_file().write_text(",".join(spec.controller_addrs) + "\n")
            click.echo(f"swarmctl: admin bundle in {admin}, controllers in {hosts_file()}")
            docker_host = spec.controller_hosts[0].addr(DOCKER_API_PORT)
            click.echo(f"docker: DOCKER_HOST=tcp://{docker_host} DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={admin}")
        if prometheus:
            metrics = spec.controller_hosts[0].addr(CONTROLLER_METRICS_PORT)
            lab.procs.spawn(
                "prometheus", lab_prometheus.prepare(root, shutil.which("prometheus") or "prometheus", metrics)
            )
            ready_url = f"http://{lab_prometheus.ADDR}/-/ready"
            wait(lambda: urllib.request.urlopen(ready_url, timeout=1).status == 200, 60, "Prometheus")  # noqa: S310
            click.echo(f"prometheus: http://{lab_prometheus.ADDR} (targets: /targets, alerts: /alerts)")
    except (errors.ShoalError, ValueError) as exc:
        raise LabError(str(exc)) from None


@group.command()
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
@_PREFIX
@_SUBNET
def down(root: pathlib.Path, prefix: str, subnet: str) -> None:
    """Stop every lab process and remove its containers, network, data and client files."""
    try:
        check_prerequisites()
        spec = _spec_from_record(root, prefix, subnet)
        lab = Lab(spec)
        _remove_client_files(lab)
        for line in lab.down():
            click.echo(f"lab down: {line}")
    except errors.ShoalError as exc:
        raise LabError(str(exc)) from None


def _remove_client_files(lab: Lab) -> None:
    """Remove swarmctl's default bundle and controller list if they are this lab's."""
    try:
        if tls.Bundle.load(tls.default_client_dir()).ca_pem == tls.Bundle.load(lab.admin_dir).ca_pem:
            shutil.rmtree(tls.default_client_dir())
            hosts_file().unlink(missing_ok=True)
    except errors.ShoalError:
        pass


@group.command()
@click.option("--dir", "root", default=DEFAULT_DIR, show_default=True, type=click.Path(path_type=pathlib.Path))
@_PREFIX
@_SUBNET
def status(root: pathlib.Path, prefix: str, subnet: str) -> None:
    """List the lab's hosts, their addresses and the health of their processes."""
    spec = _spec_from_record(root, prefix, subnet)
    lab = Lab(spec)
    if not lab.procs.names():
        raise LabError(f"no lab in {root}")
    ready: set[str] = set()
    try:
        nodes = lab.control().ListNodes(control_pb2.ListNodesRequest(), timeout=3).nodes
        ready = {n.name for n in nodes if n.status.state == types_pb2.NodeStatus.READY}
    except Exception:  # noqa: BLE001 - status still lists the processes
        pass
    namespaces = set(net.namespaces(spec))
    click.echo(f"{'HOST':<10} {'ROLE':<11} {'ADDRESS':<15} {'NETNS':<6} {'PROCESSES'}")
    for h in spec.hosts:
        procs = [n for n in (h.name, f"{h.name}-dockerd") if n in lab.procs.names()]
        health = ", ".join(f"{n}: {'running' if lab.procs.running(n) else 'dead'}" for n in procs)
        if h.role == "node":
            health += f", node {'READY' if h.name in ready else 'not ready'}"
        click.echo(f"{h.name:<10} {h.role:<11} {h.ip:<15} {'yes' if h.netns in namespaces else 'no':<6} {health}")
    for name in ("registry", "prometheus"):
        if name in lab.procs.names():
            click.echo(
                f"{name:<10} {'-':<11} {spec.gateway:<15} {'-':<6} "
                f"{name}: {'running' if lab.procs.running(name) else 'dead'}"
            )
