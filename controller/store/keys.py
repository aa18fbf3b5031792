"""Where objects live in etcd: one key per object, `<prefix>/v1/<kind>/<id>`.

Never one key holding a list: a 10,000-replica service must stay far from
etcd's 1.5 MiB request limit.
"""

from __future__ import annotations

import dataclasses
import enum
import functools

from google.protobuf import message

from shoal.v1 import objects_pb2


class Kind(enum.Enum):
    """The kinds of stored object, by their key segment."""

    NODE = "nodes"
    SERVICE = "services"
    TASK = "tasks"
    CLUSTER = "cluster"
    CA = "ca"
    SECRET = "secrets"
    CONFIG = "configs"
    NETWORK = "networks"
    REGISTRY_CREDENTIAL = "registry_credentials"  # issue 18


MESSAGE_OF: dict[Kind, type[message.Message]] = {
    Kind.NODE: objects_pb2.Node,
    Kind.SERVICE: objects_pb2.Service,
    Kind.TASK: objects_pb2.Task,
    Kind.CLUSTER: objects_pb2.Cluster,
    Kind.CA: objects_pb2.CertificateAuthority,
    Kind.SECRET: objects_pb2.Secret,
    Kind.CONFIG: objects_pb2.Config,
    Kind.NETWORK: objects_pb2.Network,
    Kind.REGISTRY_CREDENTIAL: objects_pb2.RegistryCredential,
}

#: Kinds of which a cluster has exactly one object.
SINGLETONS = (Kind.CLUSTER, Kind.CA)
KIND_OF: dict[type[message.Message], Kind] = {v: k for k, v in MESSAGE_OF.items()}
#: Kinds by their key segment (a dict lookup: the cache parses every key it loads or watches).
_KIND_BY_VALUE: dict[str, Kind] = {k.value: k for k in Kind}


def kind_of(obj: message.Message) -> Kind:
    """The kind of a stored message."""
    return KIND_OF[type(obj)]


@dataclasses.dataclass(frozen=True)
class Keys:
    """The key layout under one cluster prefix (tests give each cluster its own)."""

    prefix: str = "/shoal"

    @functools.cached_property
    def root(self) -> bytes:
        """Everything of this cluster's API version lives under this prefix (computed once: every key starts so)."""
        return f"{self.prefix.rstrip('/')}/v1/".encode()

    @property
    def leader(self) -> bytes:
        """The leadership key, held under the leader's lease; its create revision is the fence."""
        return self.root + b"leader"

    def object(self, kind: Kind, obj_id: str) -> bytes:
        """The key of one object."""
        return self.root + f"{kind.value}/{obj_id}".encode()

    def of(self, obj: message.Message) -> bytes:
        """The key of a stored message (it has an `id`)."""
        return self.object(kind_of(obj), obj.id)  # type: ignore[attr-defined]

    def name(self, kind: Kind, name: str) -> bytes:
        """The key that reserves a name: names are unique, and etcd enforces it."""
        return self.root + f"names/{kind.value}/{name}".encode()

    def parse(self, key: bytes) -> tuple[Kind, str] | None:
        """(kind, id) of an object key, or None for any other key under the root."""
        root = self.root
        if not key.startswith(root):
            return None
        kind, sep, obj_id = key[len(root) :].decode().partition("/")
        found = _KIND_BY_VALUE.get(kind)
        if not sep or not obj_id or found is None:
            return None
        return found, obj_id


def prefix_end(prefix: bytes) -> bytes:
    """The end of the key range that holds every key starting with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"
