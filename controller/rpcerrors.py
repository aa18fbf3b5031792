"""The one place where domain errors become gRPC status codes.

`handle` wraps every servicer method: a ShoalError becomes its status code
(with the leader's address in trailing metadata for NotLeader), and anything
unexpected becomes INTERNAL, logged once with the RPC's name. It also times
every unary handler (`shoal_api_handling_seconds`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import grpc

from shoal import errors
from shoal.controller import metrics

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException, rpc_name: str) -> None:
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
        async def stream(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                async for item in fn(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status here, once
                await _abort(context, exc, name)

        return stream  # type: ignore[return-value]

    handling = metrics.API_HANDLING.labels(name)

    @functools.wraps(fn)
    async def unary(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        start = time.perf_counter()
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status here, once
            await _abort(context, exc, name)
        finally:
            handling.observe(time.perf_counter() - start)

    return unary  # type: ignore[return-value]
