"""The controller's tunables, one frozen dataclass per subsystem, passed in, never global."""

from __future__ import annotations

import dataclasses

from shoal.controller import ipam


@dataclasses.dataclass(frozen=True)
class DispatcherSettings:
    """Sessions, heartbeats and status ingestion."""

    #: Agents heartbeat this often (each reply adds up to ±10% jitter).
    heartbeat_period: float = 5.0
    #: A node missing heartbeats for period × this is marked DOWN.
    grace_multiplier: float = 3.0
    #: The most heartbeats per second the fleet is asked to send (Nomad's max_heartbeats_per_second):
    #: beyond heartbeat_period × this many nodes the period grows, and the grace with it, so that
    #: heartbeats cost the controller about a quarter of a core whatever the fleet's size (0: no limit).
    max_heartbeats_per_second: float = 250.0
    #: Right after this controller becomes leader, nodes get this many times
    #: the normal grace to reconnect, so a failover marks no healthy node DOWN.
    failover_grace_multiplier: float = 2.0
    #: Status reports are written in batches of at most this many tasks ...
    status_batch_max: int = 500
    #: ... or after at most this long.
    status_batch_interval: float = 0.05
    #: Assignment changes to one node are flushed after this quiet gap ...
    assignments_debounce: float = 0.02
    #: ... or when this many are pending.
    assignments_batch_max: int = 200

    @property
    def grace(self) -> float:
        """Seconds without a heartbeat before a node is DOWN."""
        return self.heartbeat_period * self.grace_multiplier


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    """Debouncing of the control loops (STYLE H2): react to a burst once."""

    #: Quiet gap after the last change before a pass runs.
    debounce: float = 0.02
    #: A pass runs at most this long after the first change, however busy.
    max_latency: float = 0.25


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    """Overlay networks."""

    #: Where a network created without a subnet gets one (--default-address-pool, --default-address-pool-size).
    pools: ipam.Pools = dataclasses.field(default_factory=ipam.Pools)


@dataclasses.dataclass(frozen=True)
class RegistrySettings:
    """How the controller reaches registries to pin image tags to digests (issue 18)."""

    #: Docker's layout: `<certs_dir>/<host:port>/ca.crt` is a registry's own CA.
    certs_dir: str = "/etc/docker/certs.d"
    #: host[:port] of registries that may be reached without TLS verification, or over plain HTTP
    #: (as dockerd's --insecure-registry; registries on loopback addresses always may).
    insecure_registries: tuple[str, ...] = ()
    #: Deadline of one resolution, all attempts included: a create does not wait longer for a digest.
    timeout: float = 5.0


@dataclasses.dataclass(frozen=True)
class ControllerSettings:
    """Everything `swarmd controller` is configured with."""

    listen: str = "127.0.0.1:4240"
    #: Address clients and agents are told to use for this controller (default: listen).
    advertise: str = ""
    etcd_endpoints: tuple[str, ...] = ()
    etcd_prefix: str = "/shoal"
    #: Client URL of the embedded etcd started when no endpoints are given.
    embedded_etcd_listen: str = "127.0.0.1:2379"
    state_dir: str = "/var/lib/shoal/controller"
    metrics_listen: str = "127.0.0.1:9420"
    log_level: str = "info"
    #: Leader lease TTL in seconds: how long a dead leader blocks a new one.
    leader_ttl: int = 3
    #: Deadline of each etcd request.
    etcd_timeout: float = 5.0
    #: Finished tasks kept per slot before the reaper deletes them.
    task_history_limit: int = 5
    #: The AES key secrets are sealed with; every controller of a cluster needs the same file.
    data_key_file: str = ""
    #: Client TLS for an external etcd (CA, certificate, key files); empty for plaintext.
    etcd_cacert: str = ""
    etcd_cert: str = ""
    etcd_key: str = ""
    #: The name the etcd members' certificates are checked against, when not their addresses.
    etcd_server_name: str = ""
    #: Where joining nodes (no certificate yet) connect: server-only TLS, only CA.Join (default: port + 1).
    join_listen: str = ""
    #: Lifetime of node certificates, recorded in the cluster object when the cluster is created.
    cert_validity: float = 90 * 24 * 3600.0
    #: Joins accepted per second from one address, on average, and in a burst.
    join_rate: float = 20.0
    join_burst: int = 100
    #: Docker Engine API listeners (`unix:///PATH`, `tcp://HOST:PORT`); none by default.
    docker_api_listen: tuple[str, ...] = ()
    dispatcher: DispatcherSettings = dataclasses.field(default_factory=DispatcherSettings)
    loops: LoopSettings = dataclasses.field(default_factory=LoopSettings)
    networks: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)
    registry: RegistrySettings = dataclasses.field(default_factory=RegistrySettings)

    @property
    def data_key_path(self) -> str:
        """Where the secrets data key is (default: in the state dir)."""
        return self.data_key_file or f"{self.state_dir}/data.key"

    @property
    def advertise_addr(self) -> str:
        """The address to hand out for this controller."""
        return self.advertise or self.listen
