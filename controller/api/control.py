"""The Control API servicer: swarmctl's API, put together from one handler group per resource.

Reads come from the leader's cache; writes are fenced transactions through
the writer, which returns once the cache has seen them (so a create followed
by a get sees the object). Handlers never touch the control loops: the
orchestrator, scheduler and reaper react to what is written. Who may call
is decided before any handler runs (controller/authz.py).
"""

from __future__ import annotations

from shoal.controller.api.cluster import ClusterHandlers
from shoal.controller.api.cluster_settings import ClusterSettingsHandlers
from shoal.controller.api.events import EventsHandlers
from shoal.controller.api.file_updates import FileUpdateHandlers
from shoal.controller.api.files import FileHandlers
from shoal.controller.api.images import ImageHandlers
from shoal.controller.api.logs import LogsHandlers
from shoal.controller.api.networks import NetworkHandlers
from shoal.controller.api.nodes import NodeHandlers
from shoal.controller.api.rollouts import RolloutHandlers
from shoal.controller.api.services import ServiceHandlers
from shoal.controller.api.stats import StatsHandlers
from shoal.controller.api.tasks import TaskHandlers
from shoal.controller.api.volumes import VolumeHandlers
from shoal.v1 import control_pb2_grpc


class ControlServicer(
    NodeHandlers,
    ServiceHandlers,
    RolloutHandlers,
    TaskHandlers,
    FileHandlers,
    FileUpdateHandlers,
    ClusterHandlers,
    ClusterSettingsHandlers,
    StatsHandlers,
    LogsHandlers,
    EventsHandlers,
    NetworkHandlers,
    ImageHandlers,  # issue 18: ResolveImage
    VolumeHandlers,  # issue 18: ListVolumes, RemoveVolume
    control_pb2_grpc.ControlServicer,
):
    """Every Control RPC.

    Logs takes `agent_bundle=` (a callable returning the controller's own
    certificate, to dial agents with) and Events `etcd=` (the connection it
    watches), as keyword arguments beside the handlers' common ones.
    """
