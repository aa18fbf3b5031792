"""ensure_image's policy against a fake engine: when it pulls, and how a refused pull is retried."""

from __future__ import annotations

import time
from typing import Any

import aiodocker
import pytest

from shoal.agent.executor import base, dockerpull
from shoal.agent.executor.docker import _engine_errors
from shoal.v1 import types_pb2


class FakeImages:
    """The engine's image store: what it holds, and pulls that fail a set number of times."""

    def __init__(self, present: set[str], failures: int = 0, status: int = 404) -> None:
        self.present = present
        self.failures = failures
        self.status = status
        self.pulls: list[tuple[str, Any, float]] = []

    async def inspect(self, image: str) -> dict[str, Any]:
        if image not in self.present:
            raise aiodocker.DockerError(404, {"message": f"No such image: {image}"})
        return {"Id": "sha256:1"}

    async def pull(self, ref: str, auth: Any = None) -> list[dict[str, Any]]:
        self.pulls.append((ref, auth, time.time()))
        if self.failures:
            self.failures -= 1
            raise aiodocker.DockerError(self.status, {"message": "pull access denied for " + ref})
        self.present.add(ref)
        return [{"status": "Downloaded newer image"}]


class FakeDocker:
    def __init__(self, images: FakeImages) -> None:
        self.images = images


async def ensure(
    docker: FakeDocker, image: str, *, auth: types_pb2.RegistryAuth | None = None, not_before: float = 0.0
) -> None:
    await dockerpull.ensure_image(
        docker,  # type: ignore[arg-type]
        image,
        auth,
        engine_errors=_engine_errors,
        engine_timeout=5,
        pull_timeout=5,
        not_before=not_before,
    )


PINNED = "reg:5000/app:1@sha256:" + "a" * 64


async def test_a_pinned_image_the_engine_has_is_not_pulled() -> None:
    images = FakeImages({PINNED})
    await ensure(FakeDocker(images), PINNED)
    assert images.pulls == []


async def test_a_tag_is_pulled_every_time_even_when_present() -> None:
    images = FakeImages({"reg:5000/app:1"})
    await ensure(FakeDocker(images), "reg:5000/app:1")
    await ensure(FakeDocker(images), "reg:5000/app:1")
    assert [ref for ref, _, _ in images.pulls] == ["reg:5000/app:1", "reg:5000/app:1"]


async def test_a_refused_pull_of_a_present_tag_goes_on_with_the_engines_image() -> None:
    images = FakeImages({"reg:5000/app:1"}, failures=5)
    await ensure(FakeDocker(images), "reg:5000/app:1")
    assert len(images.pulls) == 1


async def test_a_refused_pull_is_tried_once_more_at_the_tasks_start_time() -> None:
    images = FakeImages(set(), failures=1)
    start = time.time() + 0.3
    await ensure(FakeDocker(images), "reg:5000/app:1", not_before=start)
    assert len(images.pulls) == 2
    assert images.pulls[1][2] >= start - 0.01  # the second try waited for the start time


async def test_a_pull_refused_twice_rejects_with_the_registrys_reason() -> None:
    images = FakeImages(set(), failures=2)
    with pytest.raises(base.PermanentError, match="pull access denied for reg:5000/app:1"):
        await ensure(FakeDocker(images), "reg:5000/app:1", not_before=time.time() + 0.05)
    assert len(images.pulls) == 2


async def test_a_refused_pull_past_the_start_time_is_not_tried_again() -> None:
    images = FakeImages(set(), failures=1)
    with pytest.raises(base.PermanentError):
        await ensure(FakeDocker(images), "reg:5000/app:1", not_before=time.time() - 1)
    assert len(images.pulls) == 1


async def test_an_engine_that_cannot_pull_now_is_temporary_and_not_waited_for() -> None:
    images = FakeImages(set(), failures=1, status=503)
    with pytest.raises(base.TemporaryError):
        await ensure(FakeDocker(images), "reg:5000/app:1", not_before=time.time() + 60)
    assert len(images.pulls) == 1


async def test_credentials_go_with_the_pull_under_a_reference_naming_the_registry() -> None:
    images = FakeImages(set())
    auth = types_pb2.RegistryAuth(username="u", password="p", server_address="docker.io")
    await ensure(FakeDocker(images), "app:1", auth=auth)
    ref, sent, _ = images.pulls[0]
    assert ref == "docker.io/app:1"
    assert sent == {"username": "u", "password": "p", "serveraddress": "docker.io"}
