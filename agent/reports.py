"""One session's Report stream: heartbeats and status batches out, their answers back in order.

The controller answers every request on the stream, in the order sent, so
each writer waits for the answer that comes back in its place. A request
whose answer is late is not withdrawn (its answer still arrives, in turn, and
is dropped); the caller decides whether to ask again. `run` reads the answers
for as long as the session lives and raises when the stream ends, which ends
the session.
"""

from __future__ import annotations

import asyncio
import collections
from typing import NoReturn

import grpc

from shoal.v1 import dispatcher_pb2


class Refused(Exception):
    """The controller refused these task statuses (a task not assigned to this node); the stream goes on."""


class StreamEnded(Exception):
    """The controller closed the Report stream without an error."""


def _retrieve(future: asyncio.Future[dispatcher_pb2.ReportResponse]) -> None:
    # An answer nobody waits for any more (its asker gave up) must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


class ReportStream:
    """Requests written in order on one `Report` call, each answered by the reply in its place."""

    def __init__(
        self, call: grpc.aio.StreamStreamCall[dispatcher_pb2.ReportRequest, dispatcher_pb2.ReportResponse]
    ) -> None:
        self._call = call
        self._waiting: collections.deque[asyncio.Future[dispatcher_pb2.ReportResponse]] = collections.deque()
        # grpc.aio allows one write in flight per call; heartbeats and status reports share the stream.
        self._writing = asyncio.Lock()
        self._ended: BaseException | None = None

    async def run(self) -> NoReturn:
        """Hand each answer to the request in its place until the stream ends; always raises."""
        try:
            while True:
                answer = await self._call.read()
                if not isinstance(answer, dispatcher_pb2.ReportResponse):  # grpc.aio.EOF
                    raise StreamEnded("controller closed the report stream")
                if not self._waiting:
                    raise StreamEnded("controller answered a report that was never sent")
                future = self._waiting.popleft()
                if not future.done():
                    future.set_result(answer)
        except BaseException as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: BaseException) -> None:
        self._ended = exc if isinstance(exc, Exception) else StreamEnded("the session is ending")
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(self._ended)

    async def ask(self, request: dispatcher_pb2.ReportRequest, timeout: float) -> dispatcher_pb2.ReportResponse:
        """Send `request` and wait up to `timeout` for its answer (TimeoutError); stream errors are raised."""
        if self._ended is not None:
            raise self._ended
        future: asyncio.Future[dispatcher_pb2.ReportResponse] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        # The write itself is not timed: one cut short might or might not have been sent, and the
        # answers that follow would then go to the wrong requests. A stream that cannot take a
        # write is a connection that the channel's keepalive ends.
        async with self._writing:
            self._waiting.append(future)
            await self._call.write(request)
        # asyncio.wait leaves the future in its place for the answer to come when the caller gives
        # up (wait_for would cancel it), and passes a cancellation on.
        done, _ = await asyncio.wait({future}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no answer within {timeout:.1f}s")
        return future.result()

    async def heartbeat(self, session_id: str, timeout: float) -> dispatcher_pb2.HeartbeatResponse:
        """One heartbeat's answer."""
        request = dispatcher_pb2.ReportRequest(heartbeat=dispatcher_pb2.HeartbeatRequest(session_id=session_id))
        return (await self.ask(request, timeout)).heartbeat

    async def statuses(
        self, session_id: str, updates: list[dispatcher_pb2.TaskStatusUpdate], timeout: float
    ) -> dispatcher_pb2.UpdateTaskStatusResponse:
        """Report statuses; raises Refused if the controller will not take them."""
        request = dispatcher_pb2.ReportRequest(
            statuses=dispatcher_pb2.UpdateTaskStatusRequest(session_id=session_id, updates=updates)
        )
        answer = await self.ask(request, timeout)
        if answer.refused:
            raise Refused(answer.refused)
        return answer.statuses
