"""Service flags for networks: `--network`, `--endpoint-mode`, `--publish`, `--dns*` (and `--network-rm`).

`options_` adds them to `service create` and `service update` (through
`spec.task_options`), `update_options` the removals only an update takes;
`apply` writes the given ones into a spec, like the rest of `spec.apply`.

`--publish` takes Docker's two forms: `[PUBLISHED:]TARGET[/PROTO]`, which
publishes through the routing mesh (ingress), and
`published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]`. Ingress ports
go to the service's endpoint; host-mode ports to the container spec, since
each opens on the node its task runs on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

from shoal.v1 import types_pb2

F = TypeVar("F", bound=Callable[..., Any])

INGRESS, HOST = "ingress", "host"
ENDPOINT_MODES = {"vip": types_pb2.EndpointSpec.VIP, "dnsrr": types_pb2.EndpointSpec.DNSRR}

#: The SpecChanges fields these flags fill.
FIELDS = ("network", "network_rm", "endpoint_mode", "dns", "dns_search", "dns_option", "publish", "publish_rm")


class Published(click.ParamType[Any, Any]):
    """A `--publish` value as `(mode, PortConfig)`; a bare TARGET gets its published port from the controller."""

    name = "[PUBLISHED:]TARGET[/PROTO] | published=P,target=T[,protocol=P][,mode=M]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value)
        if "=" in text:
            return self._long(text, param, ctx)
        ports, _, proto = text.partition("/")
        published, _, target = ports.rpartition(":")
        try:
            port = types_pb2.PortConfig(target=int(target), published=int(published) if published else 0)
        except ValueError:
            self.fail(f"{text!r} is not [PUBLISHED:]TARGET[/tcp|udp]", param, ctx)
        port.protocol = proto
        return INGRESS, port

    def _long(self, text: str, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, Any]:
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, val = part.partition("=")
            if not sep or key not in ("published", "target", "protocol", "mode"):
                self.fail(f"{text!r}: expected published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]", param, ctx)
            fields[key] = val
        mode = fields.get("mode", INGRESS)
        if mode not in (INGRESS, HOST):
            self.fail(f"{text!r}: mode must be ingress or host", param, ctx)
        try:
            port = types_pb2.PortConfig(
                target=int(fields["target"]),
                published=int(fields.get("published") or 0),
                protocol=fields.get("protocol", ""),
            )
        except (KeyError, ValueError):
            self.fail(f"{text!r}: target (and published) must be port numbers", param, ctx)
        if mode == HOST and not port.published:
            port.published = port.target
        return mode, port


class Attachment(click.ParamType[Any, Any]):
    """`NAME[,alias=A]...` or `name=NAME[,alias=A]...` as a NetworkAttachmentConfig."""

    name = "NAME[,alias=A]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, types_pb2.NetworkAttachmentConfig):
            return value
        attachment = types_pb2.NetworkAttachmentConfig()
        for n, part in enumerate(str(value).split(",")):
            key, sep, val = part.partition("=")
            if not sep and n == 0:
                attachment.target = part
            elif key == "name" and n == 0:
                attachment.target = val
            elif key == "alias" and val:
                attachment.aliases.append(val)
            else:
                self.fail(f"{value!r}: expected NAME[,alias=ALIAS]...", param, ctx)
        if not attachment.target:
            self.fail(f"{value!r}: a network name is required", param, ctx)
        return attachment


PUBLISHED = Published()
ATTACHMENT = Attachment()


def options_(fn: F) -> F:
    """Add the network flags both `service create` and `service update` take."""
    decorators = [
        click.option(
            "--publish",
            "-p",
            type=PUBLISHED,
            multiple=True,
            help="Publish a port: [PUBLISHED:]TARGET[/tcp|udp] through the routing mesh (answered on every node), "
            "or published=P,target=T[,protocol=tcp|udp][,mode=ingress|host] (repeatable).",
        ),
        click.option(
            "--network",
            type=ATTACHMENT,
            multiple=True,
            help="Attach the tasks to an overlay network: NAME[,alias=ALIAS]... (repeatable).",
        ),
        click.option(
            "--endpoint-mode",
            type=click.Choice(list(ENDPOINT_MODES)),
            help="A virtual IP per network, or DNS round robin over the tasks [default: vip].",
        ),
        click.option("--dns", metavar="IP", multiple=True, help="Upstream DNS server for names outside the cluster."),
        click.option("--dns-search", metavar="DOMAIN", multiple=True, help="DNS search domain (repeatable)."),
        click.option("--dns-option", metavar="OPTION", multiple=True, help="resolv.conf option (repeatable)."),
    ]
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def update_options(fn: F) -> F:
    """The network flags only `service update` takes."""
    fn = click.option("--network-rm", metavar="NAME", multiple=True, help="Detach the tasks from a network.")(fn)
    return click.option("--publish-rm", metavar="PUBLISHED[/PROTO]", multiple=True, help="Stop publishing a port.")(fn)


def apply(spec: types_pb2.ServiceSpec, changes: Any) -> None:
    """Write the given network flags of `changes` (a SpecChanges) into `spec`."""
    if changes.network or changes.network_rm:
        _set_networks(spec.task.networks, changes.network, changes.network_rm)
    if changes.endpoint_mode is not None:
        spec.endpoint.mode = ENDPOINT_MODES[changes.endpoint_mode]
    dns = spec.task.container.dns
    for field, given in (("nameservers", changes.dns), ("search", changes.dns_search), ("options", changes.dns_option)):
        if given:
            del getattr(dns, field)[:]
            getattr(dns, field).extend(given)
    if changes.publish or changes.publish_rm:
        ingress = [p for mode, p in changes.publish if mode == INGRESS]
        host = [p for mode, p in changes.publish if mode == HOST]
        _set_ports(spec.endpoint.ports, ingress, changes.publish_rm)
        _set_ports(spec.task.container.ports, host, changes.publish_rm)
        # A port now published one way is no longer published the other.
        _set_ports(spec.endpoint.ports, [], [_key(p) for p in host])
        _set_ports(spec.task.container.ports, [], [_key(p) for p in ingress if p.published])


def _key(p: types_pb2.PortConfig) -> str:
    return f"{p.published or p.target}/{p.protocol or 'tcp'}"


def _set_ports(ports: Any, add: Sequence[types_pb2.PortConfig], remove: Sequence[str]) -> None:
    """Drop ports named by PUBLISHED[/PROTO], replace those published again, append new ones."""
    if not add and not remove:
        return
    gone = {r if "/" in r else f"{r}/tcp" for r in remove}
    by_key = {_key(p): p for p in ports if _key(p) not in gone}
    for n, p in enumerate(add):
        # A mesh port without a number is keyed by its target, so giving it twice does not add two.
        by_key[_key(p) if p.published else f"?{p.target}/{p.protocol or 'tcp'}#{n}"] = p
    del ports[:]
    ports.extend(by_key.values())


def _set_networks(attachments: Any, add: Sequence[types_pb2.NetworkAttachmentConfig], remove: Sequence[str]) -> None:
    """Drop attachments by name or ID, replace those given again, append new ones (order is kept)."""
    by_target = {a.target: a for a in attachments if a.target not in remove}
    for a in add:
        by_target[a.target] = a
    del attachments[:]
    attachments.extend(by_target.values())


def by_id(changes: Any, ids: Mapping[str, str]) -> Any:
    """A copy of `changes` (a SpecChanges) whose networks are named by ID where `ids` knows the name."""

    def one(a: types_pb2.NetworkAttachmentConfig) -> types_pb2.NetworkAttachmentConfig:
        out = types_pb2.NetworkAttachmentConfig()
        out.CopyFrom(a)
        out.target = ids.get(a.target, a.target)
        return out

    return dataclasses.replace(
        changes,
        network=tuple(one(a) for a in changes.network),
        network_rm=tuple(ids.get(r, r) for r in changes.network_rm),
    )
