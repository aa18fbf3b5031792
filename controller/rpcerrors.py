"""The one place where domain errors become gRPC status codes.

`handle` wraps every servicer method: a ShoalError becomes its status code
(with the leader's address in trailing metadata for NotLeader), and anything
unexpected becomes INTERNAL, logged once with the RPC's name.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from shoal import errors

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException, rpc_name: str) -> None:
    if isinstance(exc, errors.NotLeader) and exc.leader:
        context.set_trailing_metadata(((errors.LEADER_METADATA_KEY, exc.leader),))
    if isinstance(exc, errors.ShoalError):
        await context.abort(exc.code, str(exc))
    log.error("%s failed unexpectedly", rpc_name, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {rpc_name}: {type(exc).__name__}")


def handle(fn: F) -> F:
    """Map errors of a unary or server-streaming handler to status codes."""
    name = fn.__name__

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            try:
                async for item in fn(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status here, once
                await _abort(context, exc, name)

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status here, once
            await _abort(context, exc, name)

    return unary  # type: ignore[return-value]
