"""Placement constraints: parsing "node.labels.zone==a" and matching nodes.

Shared by validation (refuse a bad expression before anything is written) and
the scheduler (filter nodes), so both agree on what an expression means.
"""

from __future__ import annotations

import dataclasses
import re

from shoal import errors
from shoal.v1 import objects_pb2

_EXPR = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$")
_FIXED_KEYS = ("node.id", "node.hostname", "node.name", "node.platform.os", "node.platform.arch")
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
    if key == "node.platform.os":
        return node.description.platform.os
    if key == "node.platform.arch":
        return node.description.platform.architecture
    label = key[len(_LABEL_PREFIX) :]
    return node.spec.labels.get(label)
