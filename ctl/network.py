"""`swarmctl network`: create, list, inspect and remove overlay networks; how services and tasks show theirs."""

from __future__ import annotations

from collections.abc import Mapping

import click

from shoal.ctl import client as client_
from shoal.ctl import context, options, output
from shoal.v1 import control_pb2, objects_pb2, types_pb2

HEADERS = ("ID", "NAME", "DRIVER", "SUBNET", "SCOPE", "FLAGS")


@click.group("network", help="Manage overlay networks.")
def network_group() -> None:
    pass


@network_group.command("create")
@click.argument("name")
@click.option("--driver", "-d", default="overlay", show_default=True, help="Network driver (only overlay).")
@click.option("--subnet", metavar="CIDR", help="IPv4 subnet [default: one from the controller's address pools].")
@click.option("--gateway", metavar="IP", help="An address of the subnet kept out of allocation [default: its first].")
@click.option("--label", "-l", "labels", type=options.KEY_VALUE, multiple=True, help="Label (repeatable).")
@click.option("--attachable", is_flag=True, help="Let standalone containers join it (recorded).")
@click.option("--internal", is_flag=True, help="No route out of the network.")
@context.pass_globals
def create(
    g: context.Globals,
    name: str,
    driver: str,
    subnet: str | None,
    gateway: str | None,
    labels: tuple[tuple[str, str], ...],
    attachable: bool,
    internal: bool,
) -> None:
    """Create an overlay network NAME; print its ID."""
    spec = objects_pb2.NetworkSpec(
        name=name,
        driver=driver,
        subnet=subnet or "",
        gateway=gateway or "",
        labels=dict(labels),
        attachable=attachable,
        internal=internal,
    )
    click.echo(g.call(lambda c: c.create_network(spec)).network.id)


@network_group.command("ls")
@click.option("--quiet", "-q", is_flag=True, help="Print only network IDs.")
@context.pass_globals_and_format
def ls(g: context.Globals, quiet: bool) -> None:
    """List networks."""
    networks = list(g.call(lambda c: c.list_networks()).networks)
    if quiet:
        output.echo_ids(n.id for n in networks)
    elif g.json:
        output.echo_json(networks)
    else:
        output.echo_table(
            HEADERS,
            ((output.short_id(n.id), n.spec.name, n.spec.driver, n.subnet, "swarm", _flags(n)) for n in networks),
        )


def _flags(network: objects_pb2.Network) -> str:
    spec = network.spec
    flags = [
        word
        for word, on in (("ingress", spec.ingress), ("internal", spec.internal), ("attachable", spec.attachable))
        if on
    ]
    return ",".join(flags) or "-"


@network_group.command("inspect")
@click.argument("refs", metavar="NETWORK...", nargs=-1, required=True)
@context.pass_globals_and_format
def inspect(g: context.Globals, refs: tuple[str, ...]) -> None:
    """Show networks' details (name, ID or unique ID prefix)."""

    async def fetch(c: client_.ControlClient) -> tuple[list[objects_pb2.Network], dict[str, str]]:
        found = [(await c.get_network(ref)).network for ref in refs]
        nodes = {n.id: n.name for n in (await c.list_nodes()).nodes}
        return found, nodes

    networks, nodes = g.call(fetch)
    if g.json:
        output.echo_json(networks[0] if len(networks) == 1 else networks)
        return
    for i, n in enumerate(networks):
        if i:
            click.echo()
        output.echo_fields(
            [
                ("ID", n.id),
                ("Name", n.spec.name),
                ("Driver", n.spec.driver),
                ("Labels", output.mapping(n.spec.labels) or "-"),
                ("Subnet", n.subnet),
                ("Gateway", n.gateway),
                ("VNI", str(n.vni)),
                ("Flags", _flags(n)),
                (
                    "Nodes",
                    "\n".join(f"{nodes.get(k, k)}: {v}" for k, v in sorted(n.node_addresses.items())) or "-",
                ),
                ("Created", output.since(n.meta.created_at)),
            ]
        )


@network_group.command("rm")
@click.argument("refs", metavar="NETWORK...", nargs=-1, required=True)
@context.pass_globals
def rm(g: context.Globals, refs: tuple[str, ...]) -> None:
    """Remove networks; refused while a service uses one."""
    for ref in refs:

        async def remove(c: client_.ControlClient, ref: str = ref) -> control_pb2.RemoveNetworkResponse:
            return await c.remove_network(ref)

        g.call(remove)
        click.echo(ref)


# ---- how services and tasks show their networks -----------------------------


def _port(p: types_pb2.PortConfig, mode: str) -> str:
    return f"{p.published or p.target}:{p.target}/{p.protocol or 'tcp'} ({mode})"


def endpoint_fields(svc: objects_pb2.Service, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """`service inspect` lines: networks (with aliases), endpoint mode, virtual IPs, published ports."""
    spec = svc.spec
    nets = [
        names.get(a.target, a.target) + (f" (aliases: {', '.join(a.aliases)})" if a.aliases else "")
        for a in spec.task.networks
    ]
    ports = [_port(p, "ingress") for p in spec.endpoint.ports] + [_port(p, "host") for p in spec.task.container.ports]
    fields = [("Networks", "\n".join(nets) or "-")]
    if nets or spec.endpoint.ports:
        fields.append(("Endpoint mode", output.enum_name(types_pb2.EndpointSpec.Mode, spec.endpoint.mode).lower()))
        vips = [f"{names.get(v.network_id, v.network_id)}: {v.addr}" for v in svc.endpoint.virtual_ips]
        fields.append(("Virtual IPs", "\n".join(vips) or "-"))
    fields.append(("Published ports", "\n".join(ports) or "-"))
    dns = spec.task.container.dns
    for label, values in (("DNS servers", dns.nameservers), ("DNS search", dns.search), ("DNS options", dns.options)):
        if values:
            fields.append((label, " ".join(values)))
    return fields


def address_fields(task: objects_pb2.Task, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """`task inspect` lines: the task's address on each network."""
    lines = [f"{names.get(a.network_id, a.network_id)}: {', '.join(a.addresses)}" for a in task.networks]
    return [("Addresses", "\n".join(lines))] if lines else []


async def names(c: client_.ControlClient) -> dict[str, str]:
    """Network names by ID (for showing a spec or a task)."""
    return {n.id: n.spec.name for n in (await c.list_networks()).networks}
