"""Logging: one line per event, with node, service and task IDs where they apply.

IDs attach where work enters (an RPC handler, a session, a task runner) through
context variables, so that everything logged below carries them without
passing loggers around:

    with logs.context(node_id=node.id):
        log.info("registered")   # ... node.id=abc registered
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator

_FIELDS: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("shoal_log_fields", default=())

#: The keys IDs are logged under, fixed so that logs can be searched.
KEYS = {"node_id": "node.id", "service_id": "service.id", "task_id": "task.id", "module": "module"}


@contextlib.contextmanager
def context(**fields: str) -> Iterator[None]:
    """Attach fields (node_id=..., service_id=..., task_id=...) to every line logged inside."""
    token = _FIELDS.set(_merge(fields))
    try:
        yield
    finally:
        _FIELDS.reset(token)


def bind(**fields: str) -> None:
    """Attach fields for the rest of the current asyncio task (its context is its own)."""
    _FIELDS.set(_merge(fields))


def _merge(fields: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The current fields with `fields` added; a key bound again takes the new value."""
    merged = dict(_FIELDS.get())
    merged.update((KEYS.get(k, k), v) for k, v in fields.items() if v)
    return tuple(merged.items())


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _FIELDS.get()
        record.shoal_fields = "".join(f" {k}={v}" for k, v in fields)
        return True


def setup(level: str = "info", *, stream: object = None) -> None:
    """Configure the root logger for a daemon: time, level, logger, context fields, message."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(_ContextFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s%(shoal_fields)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter that is not about our events.
    for noisy in ("aiohttp.access", "asyncio", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
