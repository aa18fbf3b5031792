"""The Docker executor: runs each task as one container through the Docker Engine API (aiodocker).

A container is named `<service>.<slot>.<task>` (global tasks: `<service>.<node>.<task>`)
and labelled with the task, service, node and slot, so that a restarted agent
finds (adopts) the containers it made and removes the stale ones. Every Engine
call has a deadline; connection failures and timeouts become `TemporaryError`,
refusals by the engine `PermanentError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import platform
import struct
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Literal

import aiodocker
import aiohttp

from shoal import units
from shoal.agent import metrics
from shoal.agent.executor import base, dockerhealth, dockermounts, dockernet, dockerpull, dockerstats
from shoal.agent.files import FileStore
from shoal.agent.network.builder import BuilderSettings, NetworkBuilder, underlay
from shoal.agent.registryauth import AuthStore, Sinks
from shoal.agent.settings import AgentSettings
from shoal.v1 import objects_pb2, types_pb2

_UNIX = "unix://"
# aiodocker reports "cannot connect to the engine" as a DockerError with this pseudo status.
_UNREACHABLE = 900
# Engine answers that mean "try again later" rather than "this cannot work".
_TEMPORARY_STATUSES = {_UNREACHABLE, 502, 503, 504}
# A stream frame header of the Engine's multiplexed log format: stream type, 3 pad bytes, length.
_FRAME_HEADER = struct.Struct(">BxxxL")
_STREAMS: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}


def container_name(task: objects_pb2.Task) -> str:
    """`<service_name>.<slot>.<task_id>`, or `<service_name>.<node_id>.<task_id>` for global tasks."""
    slot = str(task.slot) if task.slot else task.node_id
    return f"{task.service_name}.{slot}.{task.id}"


def container_labels(task: objects_pb2.Task) -> dict[str, str]:
    """The spec's labels plus Shoal's own (which win)."""
    labels = dict(task.spec.container.labels)
    labels.update(
        {
            base.LABEL_TASK_ID: task.id,
            base.LABEL_SERVICE_ID: task.service_id,
            base.LABEL_SERVICE_NAME: task.service_name,
            base.LABEL_NODE_ID: task.node_id,
            base.LABEL_SLOT: str(task.slot),
        }
    )
    return labels


def stop_grace(task: objects_pb2.Task, default: float) -> float:
    """The task's stop grace period in seconds, or `default` when its spec names none."""
    container = task.spec.container
    if container.HasField("stop_grace_period"):
        return units.from_duration(container.stop_grace_period)
    return default


def container_config(task: objects_pb2.Task, default_grace: float) -> dict[str, Any]:
    """The Engine's create-container body for `task`."""
    spec = task.spec.container
    config: dict[str, Any] = {
        "Image": spec.image,
        "Env": list(spec.env),
        "Labels": container_labels(task),
        "StopTimeout": math.ceil(stop_grace(task, default_grace)),
        "HostConfig": {"RestartPolicy": {"Name": "no"}},
    }
    if spec.command:
        config["Entrypoint"] = list(spec.command)
    if spec.args:
        config["Cmd"] = list(spec.args)
    for key, value in (("Hostname", spec.hostname), ("WorkingDir", spec.workdir), ("User", spec.user)):
        if value:
            config[key] = value
    limits = task.spec.resources.limits
    if limits.nano_cpus:
        config["HostConfig"]["NanoCpus"] = limits.nano_cpus
    if limits.memory_bytes:
        config["HostConfig"]["Memory"] = limits.memory_bytes
    if spec.HasField("healthcheck"):
        healthcheck = dockerhealth.engine_config(spec.healthcheck)
        if healthcheck:
            config["Healthcheck"] = healthcheck
    if spec.ports:
        # Host-mode publishing: the port opens on the address of the node that runs the task.
        exposed: dict[str, dict[str, Any]] = {f"{p.target}/{p.protocol or 'tcp'}": {} for p in spec.ports}
        config["ExposedPorts"] = exposed
        config["HostConfig"]["PortBindings"] = {
            f"{p.target}/{p.protocol or 'tcp'}": [{"HostPort": str(p.published or p.target)}] for p in spec.ports
        }
    if spec.mounts:  # volumes, bind mounts, tmpfs (issue 18); prepare adds the secrets' and configs'
        config["HostConfig"]["Mounts"] = dockermounts.engine_mounts(task)
    return config


def task_stub(labels: Mapping[str, str]) -> objects_pb2.Task:
    """The part of a task that a container's labels keep: enough to name and remove it."""
    slot = labels.get(base.LABEL_SLOT, "0")
    return objects_pb2.Task(
        id=labels.get(base.LABEL_TASK_ID, ""),
        service_id=labels.get(base.LABEL_SERVICE_ID, ""),
        service_name=labels.get(base.LABEL_SERVICE_NAME, ""),
        node_id=labels.get(base.LABEL_NODE_ID, ""),
        slot=int(slot) if slot.isdigit() else 0,
    )


def _parse_timestamp(text: str) -> datetime.datetime | None:
    """An Engine RFC 3339 timestamp with nanoseconds, cut to microseconds."""
    date, _, frac = text.rstrip("Z").partition(".")
    try:
        parsed = datetime.datetime.fromisoformat(f"{date}.{(frac or '0')[:6]:0<6}")
    except ValueError:
        return None
    return parsed.replace(tzinfo=datetime.UTC)


@contextlib.contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    """Turn aiodocker/aiohttp failures of `what` into the executor's sentinels."""
    try:
        yield
    except aiodocker.DockerError as exc:
        if exc.status in _TEMPORARY_STATUSES:
            raise base.TemporaryError(f"exec: {what}: engine unavailable: {exc.message}") from exc
        raise base.PermanentError(f"exec: {what}: {exc.message}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise base.TemporaryError(f"exec: {what}: engine unreachable: {exc}") from exc
    except TimeoutError as exc:
        raise base.TemporaryError(f"exec: {what}: engine did not answer in time") from exc


class DockerController:
    """One task's container on the Docker Engine (implements `base.Controller`, `base.ControllerLogs`)."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        task: objects_pb2.Task,
        settings: AgentSettings,
        files: FileStore | None = None,
        networks: NetworkBuilder | None = None,
        auths: AuthStore | None = None,
    ) -> None:
        self._docker = docker
        self._task = task
        self._settings = settings
        self._files = files
        self._networks = networks
        self._auths = auths
        self.name = container_name(task)

    def _wipe_files(self) -> None:
        if self._files is not None:
            self._files.wipe(self._task.id)

    def _ref(self) -> aiodocker.containers.DockerContainer:
        # The name holds the task ID, so it names this task's container and no other.
        return self._docker.containers.container(self.name)

    async def prepare(self) -> str:
        image = self._task.spec.container.image
        if not image:
            raise base.PermanentError("exec: task spec has no image")
        existing = await self.inspect()
        if existing is not None:
            if not existing.started and self._task.networks:
                # An earlier attempt may have died between creating the container and connecting it.
                await self._connect(dockernet.missing(await self._attachments(), dict(existing.raw)))
            return existing.container_id
        await self._ensure_image(image)
        attachments = await self._attachments()
        config = container_config(self._task, self._settings.stop_grace_period)
        dockernet.apply(config, self._task, attachments)
        with _engine_errors("create volume"):
            await dockermounts.ensure_volumes(self._docker, self._task, self._settings.engine_timeout)
        if self._files is not None:
            mounts = self._files.mounts(self._task)
            if mounts:
                config["HostConfig"].setdefault("Mounts", []).extend(mounts)
        with metrics.time_operation("create"), _engine_errors("create container"):
            async with asyncio.timeout(self._settings.engine_timeout):
                try:
                    created = await self._docker.containers.create(config, name=self.name)
                except aiodocker.DockerError as exc:
                    if exc.status != 409:  # 409: made by an earlier attempt that lost its answer
                        raise
                    found = await self.inspect()
                    if found is None:
                        raise
                    return found.container_id
        await self._connect(attachments[1:])
        return created.id

    async def _attachments(self) -> list[Any]:
        """The task's network attachments, once this node has built its networks."""
        if not self._task.networks:
            return []
        if self._networks is None:
            raise base.PermanentError("exec: this node has no overlay data path (agent started without one)")
        return await self._networks.attachments(self._task)

    async def _connect(self, attachments: list[Any]) -> None:
        """Join the networks beyond the first, before the container starts."""
        for a in attachments:
            body = json.dumps({"Container": self.name, "EndpointConfig": dockernet.endpoint(a)})
            with metrics.time_operation("connect"), _engine_errors(f"connect to network {a.docker_network}"):
                async with asyncio.timeout(self._settings.engine_timeout):
                    await self._docker._query_json(f"networks/{a.docker_network}/connect", method="POST", data=body)

    async def _ensure_image(self, image: str) -> None:
        auth_id = self._task.spec.container.registry_auth_id
        auth = self._auths.get(auth_id) if auth_id and self._auths is not None else None
        if auth_id and auth is None:
            raise base.PermanentError("exec: the service's registry credentials were not delivered to this node")
        await dockerpull.ensure_image(
            self._docker,
            image,
            auth,
            engine_errors=_engine_errors,
            engine_timeout=self._settings.engine_timeout,
            pull_timeout=self._settings.pull_timeout,
            not_before=units.from_timestamp(self._task.start_after) if self._task.HasField("start_after") else 0.0,
        )

    async def start(self) -> None:
        with metrics.time_operation("start"), _engine_errors("start container"):
            async with asyncio.timeout(self._settings.engine_timeout):
                await self._ref().start()

    async def has_healthcheck(self) -> bool:
        state = await self.inspect()
        return state is not None and dockerhealth.has_check(state.raw)

    async def wait_healthy(self) -> base.ExitStatus | None:
        return await dockerhealth.wait_healthy(self.inspect, self._shutdown)

    async def wait(self) -> base.ExitStatus:
        state = await self.inspect()
        if state is None or not dockerhealth.has_check(state.raw):
            return await self._wait()
        # Whichever comes first: the container's end, or an unhealthy verdict (the container is then stopped).
        stopping = asyncio.Event()

        async def stop_unhealthy() -> None:
            stopping.set()
            await self._shutdown()

        ended = asyncio.ensure_future(self._wait())
        watch = asyncio.ensure_future(dockerhealth.watch_unhealthy(self.inspect, stop_unhealthy))
        try:
            await asyncio.wait((ended, watch), return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                # The watch's own stop ended the container, which the engine may report first: the
                # verdict, not the exit code of the stop, is how the task ended.
                await asyncio.wait((watch,))
            if watch.done() and watch.exception() is not None:
                ended.cancel()
                self._wipe_files()
                raise watch.exception()  # type: ignore[misc]
            return await ended
        finally:
            for job in (ended, watch):
                job.cancel()
            await asyncio.gather(ended, watch, return_exceptions=True)

    async def _wait(self) -> base.ExitStatus:
        # No deadline: a container may run for months. A dropped connection is temporary.
        with _engine_errors("wait for container"):
            try:
                result = await self._ref().wait()
            except aiodocker.DockerError as exc:
                if exc.status == 404:
                    raise base.PermanentError("exec: container disappeared") from exc
                raise
        error = (result.get("Error") or {}).get("Message", "")
        self._wipe_files()  # the task has stopped: its secrets go
        return base.ExitStatus(exit_code=int(result.get("StatusCode", -1)), error=error)

    async def shutdown(self) -> None:
        try:
            await self._shutdown()
        finally:
            self._wipe_files()

    async def _shutdown(self) -> None:
        state = await self.inspect()
        if state is None or not state.running:
            return
        grace = self._configured_grace(state)
        with metrics.time_operation("stop"), _engine_errors("stop container"):
            async with asyncio.timeout(grace + self._settings.engine_timeout):
                try:
                    await self._ref().stop(t=math.ceil(grace))
                except aiodocker.DockerError as exc:
                    if exc.status not in (304, 404):  # already stopped, or gone
                        raise

    def _configured_grace(self, state: base.ContainerState) -> float:
        """The spec's grace when this controller has a spec, else what the container was made with."""
        if self._task.spec.container.image:
            return stop_grace(self._task, self._settings.stop_grace_period)
        timeout = (state.raw.get("Config") or {}).get("StopTimeout")
        return float(timeout) if timeout is not None else self._settings.stop_grace_period

    async def remove(self) -> None:
        self._wipe_files()
        with metrics.time_operation("remove"), _engine_errors("remove container"):
            async with asyncio.timeout(self._settings.engine_timeout):
                try:
                    await self._ref().delete(force=True, v=True)
                except aiodocker.DockerError as exc:
                    if exc.status != 404:
                        raise
        if self._networks is not None:
            self._networks.forget(self._task)

    async def inspect(self) -> base.ContainerState | None:
        with metrics.time_operation("inspect"), _engine_errors("inspect container"):
            async with asyncio.timeout(self._settings.engine_timeout):
                try:
                    raw = await self._ref().show()
                except aiodocker.DockerError as exc:
                    if exc.status == 404:
                        return None
                    raise
        state = raw.get("State") or {}
        started_at = state.get("StartedAt") or ""
        return base.ContainerState(
            container_id=raw["Id"],
            running=bool(state.get("Running")),
            started=bool(started_at) and not started_at.startswith("0001-"),
            exit_code=int(state.get("ExitCode") or 0),
            pid=int(state.get("Pid") or 0),
            error=state.get("Error") or "",
            raw=raw,
        )

    async def logs(self, *, follow: bool, tail: int, since: datetime.datetime | None) -> AsyncIterator[base.LogEntry]:
        params = {
            "stdout": "true",
            "stderr": "true",
            "timestamps": "true",
            "follow": "true" if follow else "false",
            "tail": str(tail) if tail else "all",
        }
        if since is not None:
            params["since"] = f"{since.timestamp():.9f}"
        # aiodocker's public log API merges stdout and stderr; the raw query keeps them apart.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._settings.engine_timeout)
        with _engine_errors("container logs"):
            async with self._docker._query(f"containers/{self.name}/logs", params=params, timeout=timeout) as resp:
                async for entry in _read_frames(resp.content):
                    yield entry


async def _read_frames(content: aiohttp.StreamReader) -> AsyncIterator[base.LogEntry]:
    """Entries of the Engine's multiplexed stream (containers are never made with a TTY)."""
    while True:
        try:
            header = await content.readexactly(_FRAME_HEADER.size)
        except asyncio.IncompleteReadError:
            return
        stream, length = _FRAME_HEADER.unpack(header)
        payload = await content.readexactly(length) if length else b""
        stamp, sep, data = payload.partition(b" ")
        timestamp = _parse_timestamp(stamp.decode(errors="replace")) if sep else None
        yield base.LogEntry(stream=_STREAMS.get(stream, "stdout"), timestamp=timestamp, data=data if sep else payload)


class DockerExecutor:
    """The Docker Engine as an executor (implements `base.Executor`)."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        settings: AgentSettings,
        files: FileStore | None = None,
        networks: NetworkBuilder | None = None,
        auths: AuthStore | None = None,
    ) -> None:
        self._docker = docker
        self._settings = settings
        self.files = files
        self.networks = networks
        self.auths = auths

    @property
    def assignment_sink(self) -> Sinks:
        """Where the worker hands the assignment set's secrets, configs and registry credentials."""
        return Sinks([s for s in (self.files, self.auths) if s is not None])

    async def list_volumes(self, node_id: str, name: str = "") -> list[types_pb2.Volume]:
        """The Shoal volumes of this node (issue 18)."""
        with _engine_errors("list volumes"):
            async with asyncio.timeout(self._settings.engine_timeout):
                return await dockermounts.list_volumes(self._docker, node_id, name)

    async def remove_volume(self, node_id: str, name: str) -> None:
        """Remove a Shoal volume of this node; dockermounts.VolumeNotFound / VolumeInUse say why not."""
        with _engine_errors("remove volume"):
            async with asyncio.timeout(self._settings.engine_timeout):
                await dockermounts.remove_volume(self._docker, node_id, name)

    async def describe(self) -> types_pb2.NodeDescription:
        with _engine_errors("engine info"):
            async with asyncio.timeout(self._settings.engine_timeout):
                info = await self._docker.system.info()
        return types_pb2.NodeDescription(
            platform=types_pb2.Platform(
                os=str(info.get("OSType") or platform.system().lower()),
                architecture=str(info.get("Architecture") or platform.machine()),
            ),
            resources=types_pb2.Resources(
                nano_cpus=int(info.get("NCPU") or 0) * 1_000_000_000,
                memory_bytes=int(info.get("MemTotal") or 0),
            ),
            engine=types_pb2.EngineDescription(engine_version=str(info.get("ServerVersion") or "")),
            executor="docker",
            data_path_addr=self.networks.settings.data_path_addr if self.networks else "",
            data_path_subnet=self.networks.settings.data_path_subnet if self.networks else "",
        )

    def controller(self, task: objects_pb2.Task) -> DockerController:
        return DockerController(self._docker, task, self._settings, self.files, self.networks, self.auths)

    async def ping(self) -> None:
        with _engine_errors("ping"):
            async with asyncio.timeout(self._settings.engine_timeout):
                async with self._docker._query("_ping"):
                    pass

    async def container_stats(self, container_id: str) -> base.ContainerStats | None:
        # one-shot: answer with one reading now instead of waiting a second for a CPU delta.
        params = {"stream": "false", "one-shot": "true"}
        with _engine_errors("container stats"):
            async with asyncio.timeout(self._settings.engine_timeout):
                try:
                    raw = await self._docker._query_json(f"containers/{container_id}/stats", params=params)
                except aiodocker.DockerError as exc:
                    if exc.status in (404, 409):  # gone, or not running
                        return None
                    raise
        return dockerstats.parse(raw)

    async def list_containers(self, node_id: str) -> list[base.ContainerSummary]:
        filters = json.dumps({"label": [f"{base.LABEL_NODE_ID}={node_id}"]})
        with _engine_errors("list containers"):
            async with asyncio.timeout(self._settings.engine_timeout):
                found = await self._docker.containers.list(all=True, filters=filters)
        summaries = []
        for container in found:
            labels = container["Labels"] or {}
            if labels.get(base.LABEL_TASK_ID):
                summaries.append(
                    base.ContainerSummary(
                        container_id=container.id,
                        task_id=labels[base.LABEL_TASK_ID],
                        running=container["State"] == "running",
                        task=task_stub(labels),
                    )
                )
        return summaries


@contextlib.asynccontextmanager
async def open_executor(settings: AgentSettings) -> AsyncIterator[DockerExecutor]:
    """A DockerExecutor on `settings.docker_host`, its HTTP client closed on exit."""
    connector: aiohttp.BaseConnector | None = None
    if settings.docker_host.startswith(_UNIX):
        # Every running task keeps one `wait` request open; aiohttp's default pool of 100
        # connections would make the 101st task's engine calls queue until they time out.
        connector = aiohttp.UnixConnector(path=settings.docker_host[len(_UNIX) :], limit=0)
        # With a connector of ours, aiodocker uses the URL as given: a placeholder host, as it does itself.
        docker = aiodocker.Docker(url=f"{_UNIX}localhost", connector=connector)
    else:
        docker = aiodocker.Docker(url=settings.docker_host)
    files = FileStore(settings.files_dir)
    files.mount(settings.files_size)
    try:
        async with contextlib.AsyncExitStack() as stack:
            networks = None
            if settings.data_path_addr:
                subnet, mtu = await underlay(settings.data_path_addr)
                builder = BuilderSettings(
                    data_path_addr=settings.data_path_addr,
                    data_path_subnet=subnet,
                    underlay_mtu=mtu,
                    engine_timeout=settings.engine_timeout,
                )
                networks = await stack.enter_async_context(NetworkBuilder(docker, builder))
            yield DockerExecutor(docker, settings, files, networks, AuthStore())
    finally:
        await docker.close()
        if connector is not None:
            await connector.close()
