"""Image references as Docker reads them: `[registry/]repository[:tag][@digest]`.

swarmctl uses this to find the registry whose credentials to send, the
controller to ask that registry for a tag's digest and to pin a spec to it.
The rules are the distribution project's: the first path component is a
registry when it has a "." or ":" or is "localhost"; otherwise the image is on
Docker Hub, where one-component names live under "library/".
"""

from __future__ import annotations

import dataclasses
import re

DOCKER_HUB = "docker.io"
#: Where Docker Hub's registry API answers, and the key the docker CLI files its credentials under.
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"

_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"(?::[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]+)?$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")
MAX_LENGTH = 255


@dataclasses.dataclass(frozen=True)
class Reference:
    """A parsed image reference; `tag` is "" when only a digest (or nothing) was given."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def api_host(self) -> str:
        """The host[:port] that serves the registry API for this image."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def config_key(self) -> str:
        """The key the docker CLI keeps this registry's credentials under."""
        return DOCKER_HUB_CONFIG_KEY if self.domain == DOCKER_HUB else self.domain

    @property
    def lookup(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag ("latest" if none)."""
        return self.digest or self.tag or "latest"


def parse(text: str) -> Reference:
    """Parse a reference; ValueError says why it is not one."""
    if not text or len(text) > MAX_LENGTH or text != text.strip():
        raise ValueError(f"invalid image reference {text[:80]!r}")
    rest, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ValueError(f"invalid digest {digest[:80]!r} in image reference")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, name = first, remainder
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"invalid registry {domain!r} in image reference")
    else:
        domain, name = DOCKER_HUB, rest
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"invalid tag {tag[:80]!r} in image reference")
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    if not name or not all(_COMPONENT.fullmatch(c) for c in name.split("/")):
        raise ValueError(f"invalid repository name {name[:80]!r} in image reference (use lowercase letters and digits)")
    return Reference(domain, name, tag, digest)


def pinned(text: str, digest: str) -> str:
    """`text` with `digest` attached, keeping its tag (":latest" if it had none), as Docker pins images."""
    ref = parse(text)
    if ref.digest:
        return text
    return f"{text}@{digest}" if ref.tag else f"{text}:latest@{digest}"


def hostname(key: str) -> str:
    """The host[:port] of a Docker config key, which may be a URL ("https://index.docker.io/v1/")."""
    host = key.split("://", 1)[1] if "://" in key else key
    return host.split("/", 1)[0]
