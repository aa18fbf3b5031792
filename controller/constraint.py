"""Placement constraints ("node.labels.zone==a") and spread preferences ("node.labels.zone").

Shared by validation (refuse a bad expression before anything is written) and
the scheduler (filter nodes), so both agree on what an expression means.
"""

from __future__ import annotations

import dataclasses
import re

from shoal import errors
from shoal.v1 import objects_pb2

_EXPR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$")
_FIXED_KEYS = ("node.id", "node.hostname", "node.name", "node.role", "node.platform.os", "node.platform.arch")
#: Every node is a worker: controllers run no tasks (they are not nodes), so
#: `node.role==worker` holds everywhere and `node.role==manager` nowhere, as in
#: a Swarm whose managers are drained.
NODE_ROLE = "worker"
_LABEL_PREFIX = "node.labels."


@dataclasses.dataclass(frozen=True, slots=True)
class Constraint:
    """One `key op value` expression; `op` is "==" or "!="."""

    key: str
    op: str
    value: str

    def matches(self, node: objects_pb2.Node) -> bool:
        """True if the node satisfies the expression (a missing label equals nothing)."""
        actual = _value(self.key, node)
        if actual is None:
            equal = False
        elif self.key == "node.id":
            equal = actual == self.value
        else:
            # As SwarmKit: values compare case-insensitively (hostnames, labels, platform).
            equal = actual.lower() == self.value.lower()
        return equal if self.op == "==" else not equal

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def parse(expr: str) -> Constraint:
    """The Constraint in `expr`; InvalidArgument names what is wrong."""
    match = _EXPR.match(expr)
    if not match:
        raise errors.InvalidArgument(f"constraint {expr!r}: expected KEY==VALUE or KEY!=VALUE")
    key, op, value = match.groups()
    if key not in _FIXED_KEYS and not (key.startswith(_LABEL_PREFIX) and len(key) > len(_LABEL_PREFIX)):
        known = ", ".join((*_FIXED_KEYS, "node.labels.KEY"))
        raise errors.InvalidArgument(f"constraint {expr!r}: unknown key {key!r} (known: {known})")
    return Constraint(key, op, value)


def parse_all(exprs: list[str]) -> list[Constraint]:
    """Every expression parsed, or InvalidArgument for the first bad one."""
    return [parse(e) for e in exprs]


def _value(key: str, node: objects_pb2.Node) -> str | None:
    if key == "node.id":
        return node.id
    if key in ("node.hostname", "node.name"):
        return node.description.hostname or node.name
    if key == "node.role":
        return NODE_ROLE
    if key == "node.platform.os":
        return node.description.platform.os
    if key == "node.platform.arch":
        return node.description.platform.architecture
    label = key[len(_LABEL_PREFIX) :]
    return node.spec.labels.get(label)


def parse_spread(descriptor: str) -> str:
    """The label key of a spread preference ("node.labels.zone" -> "zone"); InvalidArgument otherwise.

    Only node labels can be spread over: spreading over a node's ID or
    hostname is what the scheduler already does by default.
    """
    key = descriptor.strip()
    if not key.startswith(_LABEL_PREFIX) or len(key) == len(_LABEL_PREFIX) or any(c.isspace() for c in key):
        raise errors.InvalidArgument(f"placement preference spread={descriptor!r}: expected node.labels.KEY")
    return key[len(_LABEL_PREFIX) :]


def label(node: objects_pb2.Node, key: str) -> str | None:
    """A node label's value, or None when the node has no such label."""
    return node.spec.labels.get(key)
