"""The agent's settings: one frozen dataclass, built by `main` from flags, passed down.

Every tunable lives here with the reason for its default; no module of the
agent reads a global. Unit tests build an `AgentSettings` with short timings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

DEFAULT_STATE_ROOT = Path("/var/lib/shoal/agent")


@dataclasses.dataclass(frozen=True)
class AgentSettings:
    """Everything the agent needs to run; `state_dir` defaults to DEFAULT_STATE_ROOT/<node_name>."""

    controllers: tuple[str, ...]
    """Controller addresses (HOST:PORT) to register with; the agent follows the leader among them."""

    node_name: str
    """This node's name: a DNS label, unique in the cluster; also sent as the description's hostname."""

    docker_host: str = "unix:///var/run/docker.sock"
    """Docker Engine API endpoint."""

    listen: str = "127.0.0.1:4250"
    """Where the agent's own gRPC server (task logs, inspect) listens; sent to the controller."""

    metrics_listen: str = "127.0.0.1:9430"
    """Where GET /metrics is served."""

    state_dir: Path | None = None
    """Holds the node ID file; None means DEFAULT_STATE_ROOT/<node_name>."""

    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Node labels from --label; copied into the node's spec when the controller first creates it."""

    log_level: str = "info"
    """Root log level."""

    join_token: str = ""
    """The token to join the cluster with when this node has no certificate yet."""

    join_addr: str = ""
    """The controllers' join port (server-only TLS); default: the first controller's port plus one."""

    data_path_addr: str = ""
    """This node's underlay address for overlay (VXLAN) traffic; empty: the node builds no overlay networks,
    and the scheduler places no task that joins one on it."""

    files_size: str = "64m"
    """Size of the tmpfs that holds the secrets and configs of this node's tasks."""

    session_open_timeout: float = 5.0
    """Seconds to wait for the first SessionMessage (SwarmKit: 5 s)."""

    session_open_patience: float = 15.0
    """Further seconds for the first SessionMessage while the connection stands (a busy controller)."""

    rpc_timeout: float = 10.0
    """How long a status report, and at most a heartbeat, waits for the controller's answer."""

    keepalive: float = 5.0
    """HTTP/2 ping interval and ping timeout on the channel to a controller: a controller that is
    gone, cut off or paused is noticed within twice this, however long its answers may take."""

    default_heartbeat_period: float = 5.0
    """Heartbeat period used until the controller names one (SwarmKit default: 5 s)."""

    backoff_base: float = 0.1
    """First reconnect delay bound; grows by 2x up to `backoff_cap` (SwarmKit: 100 ms)."""

    backoff_cap: float = 8.0
    """Largest reconnect delay bound (SwarmKit: 8 s); the wait is drawn at random below it."""

    retry_base: float = 0.5
    """First delay bound when an engine call fails temporarily (engine restarting)."""

    retry_cap: float = 10.0
    """Largest delay bound between retries of a temporarily failing engine call."""

    reporter_batch_size: int = 100
    """Most task statuses sent in one report."""

    reporter_flush_interval: float = 0.25
    """Seconds the reporter waits to gather more statuses into a batch that is not full."""

    stop_grace_period: float = 10.0
    """Seconds a container gets to stop before the engine kills it, when the spec names none."""

    engine_timeout: float = 30.0
    """Deadline of a single Docker Engine call (pulls, waits and log streams excepted)."""

    pull_timeout: float = 600.0
    """Deadline of an image pull."""

    server_grace: float = 2.0
    """Seconds the agent's gRPC server lets running calls finish when the agent exits."""

    stats_interval: float = 5.0
    """Seconds between two readings of the containers' stats (shoal_container_*; docker stats reads every 1 s,
    cAdvisor every 1 s, but one engine call per container per reading must stay cheap on a full node)."""

    def __post_init__(self) -> None:
        if self.state_dir is None:
            object.__setattr__(self, "state_dir", DEFAULT_STATE_ROOT / self.node_name)
        object.__setattr__(self, "controllers", tuple(self.controllers))
        object.__setattr__(self, "labels", dict(self.labels))

    @property
    def tls_dir(self) -> Path:
        """The node's certificate, key and the cluster's CA."""
        assert self.state_dir is not None
        return Path(self.state_dir) / "tls"

    @property
    def files_dir(self) -> Path:
        """The tmpfs mount point for secrets and configs."""
        assert self.state_dir is not None
        return Path(self.state_dir) / "files"

    @property
    def node_id_path(self) -> Path:
        """The file that keeps this node's ID across restarts."""
        assert self.state_dir is not None  # set by __post_init__
        return Path(self.state_dir) / "node_id"
