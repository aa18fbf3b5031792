"""`swarmd controller`: flags, and the process's lifetime.

`serve` opens etcd (embedded or given), the gRPC server and the metrics
endpoint in an exit stack, then campaigns for leadership forever; while it
leads, the term's loops run (term.py). SIGTERM cancels it all in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import logging
import pathlib
import socket
from typing import NoReturn

import click
import grpc

from shoal import authz, daemon, heap, ids, logs, looplag, metrics_http, pki, tls, units
from shoal.control_client import ControlClient
from shoal.controller import bootstrap, ipam, members, metrics, state_metrics
from shoal.controller.api.ca import CAServicer, RateLimiter
from shoal.controller.api.control import ControlServicer
from shoal.controller.context import Leadership
from shoal.controller.discovery import Discovery
from shoal.controller.dispatcher.dispatcher import DispatcherServicer
from shoal.controller.dockerapi import app as dockerapi
from shoal.controller.dockerapi import server as dockerapi_server
from shoal.controller.embedded_etcd import embedded_etcd
from shoal.controller.leader import Election, LeaderInfo
from shoal.controller.secrets import Sealer
from shoal.controller.settings import ControllerSettings, DispatcherSettings, NetworkSettings, RegistrySettings
from shoal.controller.store.etcd import Etcd, EtcdTLS
from shoal.controller.store.keys import Keys
from shoal.controller.term import run_term
from shoal.v1 import ca_pb2_grpc, control_pb2_grpc, dispatcher_pb2_grpc

log = logging.getLogger(__name__)

#: Bounded messages: a hostile or buggy client cannot make us buffer gigabytes.
#: The largest legitimate request is a 500 KB secret.
MAX_MESSAGE = 4 * 1024 * 1024


def _controller_id(state_dir: str) -> str:
    """This controller's stable ID, kept in its state dir."""
    path = pathlib.Path(state_dir) / "controller_id"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    new = ids.new_id()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new)
    tmp.replace(path)
    return new


def join_addr(listen: str) -> str:
    """The join port's default: the gRPC port plus one, on the same host."""
    host, port = metrics_http.split_hostport(listen)
    return f"{host}:{port + 1}"


async def serve(settings: ControllerSettings) -> None:
    """Run the controller until cancelled."""
    async with contextlib.AsyncExitStack() as stack:
        endpoints = list(settings.etcd_endpoints)
        etcd_tls = EtcdTLS.from_files(
            settings.etcd_cacert, settings.etcd_cert, settings.etcd_key, settings.etcd_server_name
        )
        if not endpoints:
            url, etcd_tls = await stack.enter_async_context(
                embedded_etcd(settings.state_dir, settings.embedded_etcd_listen)
            )
            endpoints = [url]
            settings = dataclasses.replace(settings, etcd_endpoints=tuple(endpoints))
        etcd = await stack.enter_async_context(Etcd(endpoints, timeout=settings.etcd_timeout, tls=etcd_tls))
        keys = Keys(settings.etcd_prefix)
        cluster, authority = await bootstrap.ensure_cluster(
            etcd, keys, settings.task_history_limit, settings.cert_validity
        )
        admin_dir = bootstrap.write_admin_bundle(authority, settings.state_dir)
        me = LeaderInfo(_controller_id(settings.state_dir), settings.advertise_addr)
        serving = tls.ServingCertificate(
            authority.bundle(common_name=me.controller_id, role="controller", validity=bootstrap.cert_validity(cluster))
        )
        election = Election(etcd, keys, me, ttl=settings.leader_ttl)
        leadership = Leadership(election, settings, etcd)
        dispatcher_servicer = DispatcherServicer(leadership)
        sealer = Sealer.from_file(settings.data_key_path)

        def removed(node_id: str) -> bool:
            term = leadership.current
            return term is not None and term.cache.cluster is not None and node_id in term.cache.cluster.removed_nodes

        server = grpc.aio.server(
            interceptors=[authz.Authorizer(lambda: authority.cluster_id, authz.CONTROLLER_RULES, removed)],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", 256 * 1024 * 1024),
                ("grpc.http2.min_ping_interval_without_data_ms", 5000),
                *tls.SERVER_KEEPALIVE_OPTIONS,
                ("grpc.so_reuseport", 0),
            ],
        )
        control = ControlServicer(leadership, keys, sealer, agent_bundle=lambda: serving.bundle, etcd=etcd)
        control_pb2_grpc.add_ControlServicer_to_server(control, server)
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(dispatcher_servicer, server)
        limiter = RateLimiter(settings.join_rate, settings.join_burst)
        ca_pb2_grpc.add_CAServicer_to_server(
            CAServicer(leadership, keys, sealer, authority=authority, limiter=limiter), server
        )
        join = settings.join_listen or join_addr(settings.listen)
        for addr, creds in (
            (settings.listen, serving.credentials()),
            (join, serving.credentials(require_client_cert=False)),
        ):
            try:
                server.add_secure_port(addr, creds)
            except RuntimeError:
                raise click.ClickException(f"cannot listen on {addr}") from None
        await server.start()
        stack.push_async_callback(server.stop, 2.0)
        sd = Discovery(etcd=etcd, keys=keys, cache=lambda: state_metrics.CLUSTER.cache)
        bound = await stack.enter_async_context(metrics_http.serve(settings.metrics_listen, extra_routes=sd.routes()))
        await stack.enter_async_context(members.advertised(etcd, keys, members.local(me.controller_id, me.addr, bound)))
        docker_client = None
        if settings.docker_api_listen:
            docker_client = await stack.enter_async_context(
                _docker_api(settings, authority, me.controller_id, serving.bundle)
            )
        log.info(
            "controller %s of cluster %s listening on %s (join %s, metrics %s), etcd %s; admin bundle in %s",
            me.controller_id,
            authority.cluster_id,
            settings.listen,
            join,
            bound,
            ",".join(endpoints),
            admin_dir,
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(
                _renew(serving, authority, me.controller_id, leadership, docker_client), name="certificate-renewal"
            )
            tg.create_task(looplag.watch(metrics.EVENT_LOOP_LAG), name="event-loop-lag")
            tg.create_task(
                election.run(
                    functools.partial(
                        run_term,
                        etcd=etcd,
                        keys=keys,
                        settings=settings,
                        leadership=leadership,
                        dispatcher_servicer=dispatcher_servicer,
                        sealer=sealer,
                    )
                ),
                name="election",
            )


async def _renew(
    serving: tls.ServingCertificate,
    authority: bootstrap.Authority,
    controller_id: str,
    leadership: Leadership,
    docker_client: ControlClient | None,
) -> NoReturn:
    """Renew this controller's own certificate at 50-80% of its lifetime; new handshakes get the new one."""
    while True:
        await asyncio.sleep(serving.bundle.renew_in())
        cluster = leadership.current.cache.cluster if leadership.current else None
        serving.replace(
            authority.bundle(common_name=controller_id, role="controller", validity=bootstrap.cert_validity(cluster))
        )
        if docker_client is not None:
            await docker_client.replace_bundle(serving.bundle)
        log.info("renewed this controller's certificate")


# --- Docker Engine API (shoal.controller.dockerapi) ---


def _docker_api(
    settings: ControllerSettings, authority: bootstrap.Authority, controller_id: str, bundle: tls.Bundle
) -> contextlib.AbstractAsyncContextManager[ControlClient]:
    """The Docker API on its listeners, calling this controller's Control API with its own certificate."""
    host, port = metrics_http.split_hostport(settings.listen)
    own = f"127.0.0.1:{port}" if host in ("0.0.0.0", "", "::") else settings.listen
    advertised = metrics_http.split_hostport(settings.advertise_addr)[0]

    def server_bundle(listen_host: str) -> tls.Bundle:
        # Docker's CLI checks the server's certificate against the host in DOCKER_HOST.
        names = {listen_host, advertised, "localhost", "127.0.0.1", socket.gethostname()} - {"", "0.0.0.0", "::"}
        ips = tuple(n for n in names if _is_ip(n))
        dns = (pki.CONTROLLER_NAME, *sorted(n for n in names if not _is_ip(n)))
        key = pki.new_key()
        cert = pki.issue(
            authority.ca_pem,
            authority.key_pem,
            pki.csr_pem(key),
            common_name=controller_id,
            role="controller",
            organization=authority.cluster_id,
            validity=bootstrap.ADMIN_VALIDITY,
            dns_names=dns,
            ip_addresses=ips,
        )
        return tls.Bundle(authority.ca_pem, cert, pki.key_pem(key))

    return dockerapi.run(
        settings.docker_api_listen,
        controller_addr=own,
        controller_id=controller_id,
        cluster_id=authority.cluster_id,
        client_bundle=bundle,
        server_bundle=server_bundle,
        tls_dir=pathlib.Path(settings.state_dir) / "docker-api-tls",
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    try:
        return units.parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--listen", default="127.0.0.1:4240", show_default=True, help="gRPC address for swarmctl and agents.")
@click.option("--advertise", default="", help="Address to give out for this controller (default: --listen).")
@click.option("--etcd", "etcd", default="", help="etcd client URLs, comma-separated; default: an embedded etcd.")
@click.option("--etcd-prefix", default="/shoal", show_default=True, help="Key prefix of this cluster in etcd.")
@click.option(
    "--embedded-etcd-listen",
    default="127.0.0.1:2379",
    show_default=True,
    help="Client address of the embedded etcd (its peer port is the next one).",
)
@click.option("--join-listen", default="", help="Server-only TLS address for joining nodes (default: port+1).")
@click.option("--etcd-cacert", default="", help="CA file to verify an external etcd with (enables TLS).")
@click.option("--etcd-cert", default="", help="Client certificate file for an external etcd.")
@click.option("--etcd-key", default="", help="Client key file for an external etcd.")
@click.option("--etcd-server-name", default="", help="Name to check the etcd members' certificates against.")
@click.option("--data-key-file", default="", help="AES key that seals secrets (default: STATE_DIR/data.key).")
@click.option(
    "--cert-validity",
    default="2160h",
    show_default=True,
    callback=lambda c, p, v: _duration(c, p, v),
    help="Lifetime of node certificates, set when the cluster is created (renewed at 50-80%).",
)
@click.option("--state-dir", default="/var/lib/shoal/controller", show_default=True)
@click.option("--metrics-listen", default="127.0.0.1:9420", show_default=True, help="HTTP address of /metrics.")
@click.option(
    "--heartbeat-period",
    default="5s",
    show_default=True,
    callback=_duration,
    help="How often agents heartbeat; a node is DOWN after 3 missed periods.",
)
@click.option(
    "--max-heartbeats-per-second",
    type=click.FloatRange(min=0),
    default=DispatcherSettings.max_heartbeats_per_second,
    show_default=True,
    help="Heartbeats per second the fleet may send; past period x this many nodes the period (and grace) "
    "grows. 0: no limit.",
)
@click.option(
    "--join-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=ControllerSettings.join_rate,
    show_default=True,
    help="Joins accepted per second from one address, on average (raise it to join a fleet from one host).",
)
@click.option(
    "--join-burst",
    type=click.IntRange(min=1),
    default=ControllerSettings.join_burst,
    show_default=True,
    help="Joins accepted at once from one address.",
)
@click.option(
    "--default-address-pool",
    "address_pools",
    multiple=True,
    default=("10.0.0.0/8",),
    show_default=True,
    help="Where overlay networks created without --subnet get one (repeatable).",
)
@click.option(
    "--default-address-pool-size",
    "address_pool_size",
    type=click.IntRange(8, 29),
    default=24,
    show_default=True,
    help="Prefix length of the subnets taken from the default address pools.",
)
@click.option(
    "--docker-api-listen",
    multiple=True,
    metavar="unix:///PATH|tcp://HOST:PORT",
    help="Serve the Docker Engine API here (repeatable): a root-only unix socket, or TLS needing an admin "
    "certificate (DOCKER_CERT_PATH=STATE_DIR/admin-tls).",
)
@click.option(
    "--registry-certs-dir",
    default=RegistrySettings.certs_dir,
    show_default=True,
    help="Registries' own CAs, as dockerd reads them: DIR/HOST:PORT/ca.crt (to pin image tags to digests).",
)
@click.option(
    "--insecure-registry",
    "insecure_registries",
    metavar="HOST:PORT",
    multiple=True,
    help="A registry to reach without TLS verification or over HTTP, as dockerd's flag (loopback ones always).",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
def command(
    listen: str,
    advertise: str,
    etcd: str,
    etcd_prefix: str,
    embedded_etcd_listen: str,
    join_listen: str,
    etcd_cacert: str,
    etcd_cert: str,
    etcd_key: str,
    etcd_server_name: str,
    data_key_file: str,
    cert_validity: float,
    state_dir: str,
    metrics_listen: str,
    heartbeat_period: float,
    max_heartbeats_per_second: float,
    join_rate: float,
    join_burst: int,
    address_pools: tuple[str, ...],
    address_pool_size: int,
    docker_api_listen: tuple[str, ...],
    registry_certs_dir: str,
    insecure_registries: tuple[str, ...],
    log_level: str,
) -> None:
    """Run a controller: the control API, the dispatcher and, while leader, the control loops."""
    if heartbeat_period <= 0:
        raise click.BadParameter("must be positive", param_hint="--heartbeat-period")
    if cert_validity < 60:
        raise click.BadParameter("must be at least 1m", param_hint="--cert-validity")
    if bool(etcd_cert) != bool(etcd_key):
        raise click.BadParameter("give both --etcd-cert and --etcd-key, or neither", param_hint="--etcd-cert")
    try:
        pools = ipam.Pools.parse(address_pools, address_pool_size)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--default-address-pool") from None
    for url in docker_api_listen:
        try:
            dockerapi_server.parse_listen(url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--docker-api-listen") from None
    logs.setup(log_level)
    heap.tune()
    settings = ControllerSettings(
        listen=listen,
        advertise=advertise,
        etcd_endpoints=tuple(u.strip() for u in etcd.split(",") if u.strip()),
        etcd_prefix=etcd_prefix,
        embedded_etcd_listen=embedded_etcd_listen,
        join_listen=join_listen,
        etcd_cacert=etcd_cacert,
        etcd_cert=etcd_cert,
        etcd_key=etcd_key,
        etcd_server_name=etcd_server_name,
        data_key_file=data_key_file,
        cert_validity=cert_validity,
        state_dir=state_dir,
        metrics_listen=metrics_listen,
        log_level=log_level,
        join_rate=join_rate,
        join_burst=join_burst,
        docker_api_listen=docker_api_listen,
        dispatcher=DispatcherSettings(
            heartbeat_period=heartbeat_period, max_heartbeats_per_second=max_heartbeats_per_second
        ),
        networks=NetworkSettings(pools=pools),
        registry=RegistrySettings(certs_dir=registry_certs_dir, insecure_registries=insecure_registries),
    )
    daemon.run(functools.partial(serve, settings))
