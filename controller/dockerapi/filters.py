"""Docker's `filters` query parameter: a JSON map of filter names to the values asked for.

Clients send `{"name": {"web": true}}` (or, from old clients, `{"name":
["web"]}`); each endpoint accepts its own names and refuses others as dockerd
does ("invalid filter 'x'"). Matching follows dockerd: values of one filter
are alternatives, different filters must all match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from shoal import errors

Filters = dict[str, list[str]]


def parse(raw: str | None, allowed: Iterable[str]) -> Filters:
    """The filters of a request; InvalidArgument for bad JSON or a filter the endpoint does not have."""
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        raise errors.InvalidArgument(f"invalid filters: not JSON: {raw[:80]!r}") from None
    if not isinstance(doc, dict):
        raise errors.InvalidArgument("invalid filters: expected a JSON object")
    names = set(allowed)
    out: Filters = {}
    for name, values in doc.items():
        if name not in names:
            raise errors.InvalidArgument(f"invalid filter '{name}'")
        if isinstance(values, dict):
            out[name] = [str(v) for v, on in values.items() if on]
        elif isinstance(values, list):
            out[name] = [str(v) for v in values]
        else:
            raise errors.InvalidArgument(f"invalid filter '{name}': expected an object or an array of values")
    return out


def prefix(filters: Filters, name: str, value: str) -> bool:
    """The filter is absent, or one of its values is a prefix of `value` (id and name filters)."""
    wanted = filters.get(name)
    return not wanted or any(value.startswith(w) for w in wanted)


def exact(filters: Filters, name: str, value: str) -> bool:
    """The filter is absent, or one of its values is `value`."""
    wanted = filters.get(name)
    return not wanted or value in wanted


def labels(filters: Filters, name: str, have: Mapping[str, str]) -> bool:
    """Every `key` or `key=value` of the filter is among `have` (dockerd's label filter)."""
    for want in filters.get(name, ()):
        key, sep, value = want.partition("=")
        if key not in have or (sep and have[key] != value):
            return False
    return True
