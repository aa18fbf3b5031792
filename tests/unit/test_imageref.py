"""Image references, read as Docker reads them."""

from __future__ import annotations

import pytest

from shoal import imageref

DIGEST = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", "", ""),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", ""),
        ("team/app:1", "docker.io", "team/app", "1", ""),
        ("localhost/app", "localhost", "app", "", ""),
        ("127.0.0.1:5000/shoal/busybox:1", "127.0.0.1:5000", "shoal/busybox", "1", ""),
        (f"reg.example/a/b:2@{DIGEST}", "reg.example", "a/b", "2", DIGEST),
        (f"index.docker.io/library/x@{DIGEST}", "docker.io", "library/x", "", DIGEST),
    ],
)
def test_parse(text: str, domain: str, path: str, tag: str, digest: str) -> None:
    assert imageref.parse(text) == imageref.Reference(domain, path, tag, digest)


@pytest.mark.parametrize("bad", ["", "Upper/case", "a b", "x:bad tag", "x@sha256:short", "x/" * 200, " x"])
def test_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        imageref.parse(bad)


def test_pinned_keeps_the_tag_and_hosts() -> None:
    assert imageref.pinned("busybox", DIGEST) == f"busybox:latest@{DIGEST}"
    assert imageref.pinned("r:5000/a:1", DIGEST) == f"r:5000/a:1@{DIGEST}"
    assert imageref.pinned(f"r/a@{DIGEST}", "sha256:" + "1" * 64) == f"r/a@{DIGEST}"
    assert imageref.parse("busybox").api_host == "registry-1.docker.io"
    assert imageref.parse("busybox").config_key == "https://index.docker.io/v1/"
    assert imageref.hostname("https://index.docker.io/v1/") == "index.docker.io"
