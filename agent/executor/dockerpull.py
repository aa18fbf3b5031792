"""Getting a task's image onto the node, as Docker's swarm executor does.

An image pinned to a digest (`repo:tag@sha256:...`, what the controller pins
specs to) is pulled only when the engine does not have it: those bytes never
change. An image named by tag alone is pulled every time a task starts, so
each start follows the registry; if that pull fails but the engine has some
image of that name, the task goes on with it (logged). The task's registry
credentials, when its spec names some, go in the pull's X-Registry-Auth header
and nowhere else.

A pull the registry refuses (bad credentials, unknown image or tag) is a
PermanentError carrying the engine's words, so the task is REJECTED with the
registry's reason and replaced per its restart policy; the engine being
unreachable is a TemporaryError, retried. A replacement is made at once and
prepared (pulled) during its restart delay: a refused pull is tried again at
the task's start time before it counts, so a pull that keeps failing is tried
once per restart delay, not as fast as the registry answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import aiodocker

from shoal import imageref
from shoal.agent import metrics
from shoal.agent.executor import base, dockerstats
from shoal.v1 import types_pb2

log = logging.getLogger(__name__)

#: Longest wait for a task's start time before a failed pull is tried again (bounds a skewed clock).
MAX_RETRY_WAIT = 300.0

#: Turns engine failures into the executor's errors (docker._engine_errors).
EngineErrors = Callable[[str], AbstractContextManager[None]]


def _pull_ref(image: str) -> str:
    """`image` with its registry named: aiodocker sends credentials only for a reference that has one."""
    try:
        ref = imageref.parse(image)
    except ValueError:
        return image
    head = image.split("@", 1)[0]
    return image if "/" in head and ref.domain == head.split("/", 1)[0] else f"{ref.domain}/{image}"


def engine_auth(auth: types_pb2.RegistryAuth) -> dict[str, str]:
    """The Engine API's AuthConfig (the X-Registry-Auth header's content)."""
    if auth.identity_token:
        return {"identitytoken": auth.identity_token, "serveraddress": auth.server_address}
    return {"username": auth.username, "password": auth.password, "serveraddress": auth.server_address}


async def _present(docker: aiodocker.Docker, image: str, engine_errors: EngineErrors, timeout: float) -> bool:
    with metrics.time_operation("inspect"), engine_errors("inspect image"):
        async with asyncio.timeout(timeout):
            try:
                await docker.images.inspect(image)
                return True
            except aiodocker.DockerError as exc:
                if exc.status != 404:
                    raise
                return False


async def ensure_image(
    docker: aiodocker.Docker,
    image: str,
    auth: types_pb2.RegistryAuth | None,
    *,
    engine_errors: EngineErrors,
    engine_timeout: float,
    pull_timeout: float,
    not_before: float = 0.0,
) -> None:
    """Pull `image` if the policy above says so; PermanentError with the registry's reason if it cannot be had.

    `not_before` is the task's start time (unix seconds): a refused pull is tried once more then.
    """
    pinned = "@" in image
    present = await _present(docker, image, engine_errors, engine_timeout)
    if pinned and present:
        return
    credentials = engine_auth(auth) if auth is not None else None
    ref = _pull_ref(image) if credentials else image
    for attempt in (1, 2):
        try:
            with metrics.time_pull(), metrics.time_operation("pull"), engine_errors("pull failed"):
                async with asyncio.timeout(pull_timeout):
                    progress = await docker.images.pull(ref, auth=credentials)
            break
        except base.PermanentError as exc:
            if present:
                log.warning("pulling %s failed (%s); going on with the image the engine has", image, exc)
                return
            wait = min(not_before - time.time(), MAX_RETRY_WAIT)
            if attempt == 2 or wait <= 0:
                raise
            log.info("pulling %s failed (%s); trying again at the task's start, in %.1fs", image, exc, wait)
            await asyncio.sleep(wait)
    metrics.IMAGE_PULL_BYTES.inc(dockerstats.pulled_bytes(progress))

