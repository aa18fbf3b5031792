"""The one place that decides who is calling.

Today an agent names its node with a metadata header; when the cluster CA
lands, this module will read the node ID and role from the peer's TLS
certificate instead, and no handler will change. Handlers never take a node
ID from a request body.
"""

from __future__ import annotations

import dataclasses
import enum

import grpc

from shoal import errors
from shoal.identity import NODE_ID_METADATA_KEY

_MAX_ID = 64


class Role(enum.Enum):
    """What a caller may do."""

    WORKER = "worker"
    CONTROLLER = "controller"
    ADMIN = "admin"


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller."""

    node_id: str
    role: Role


def node_caller(context: grpc.aio.ServicerContext) -> Caller:
    """The agent calling a dispatcher RPC; PermissionDenied if it did not identify itself."""
    for key, value in context.invocation_metadata() or ():
        if key == NODE_ID_METADATA_KEY:
            node_id = value if isinstance(value, str) else value.decode()
            if not node_id or len(node_id) > _MAX_ID or not node_id.isalnum():
                raise errors.PermissionDenied("invalid node identity")
            return Caller(node_id, Role.WORKER)
    raise errors.PermissionDenied("the caller did not identify its node")
