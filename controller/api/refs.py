"""Resolving what users type ("web", "3f2a", a full ID) to one object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from shoal import errors

T = TypeVar("T")

#: Prefixes shorter than this are not matched against IDs (too many collisions to be useful).
MIN_PREFIX = 1


def resolve(kind: str, ref: str, table: Mapping[str, T], by_name: Mapping[str, str] | None = None) -> T:
    """The object whose ID is `ref`, else whose name is `ref`, else whose ID starts with `ref`."""
    if not ref:
        raise errors.InvalidArgument(f"a {kind} name or ID is required")
    obj = table.get(ref)
    if obj is not None:
        return obj
    if by_name is not None and ref in by_name:
        return table[by_name[ref]]
    matches = [obj_id for obj_id in table if obj_id.startswith(ref)] if len(ref) >= MIN_PREFIX else []
    if len(matches) == 1:
        return table[matches[0]]
    if len(matches) > 1:
        raise errors.InvalidArgument(f"{kind} {ref!r} is ambiguous: it matches {len(matches)} IDs")
    raise errors.NotFound(f"{kind} {ref!r} not found")
