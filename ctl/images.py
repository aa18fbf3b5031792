"""The image flags of `service create/update`: registry credentials to send, and whether to pin the tag.

`--with-registry-auth` reads the credentials for the image's registry from
the Docker config (dockerconfig.py) and sends them in the request, never in
the spec; `--no-resolve-image` asks the controller to keep the tag as given.
The controller's warnings (an image it could not pin) go to stderr.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click

from shoal import errors, imageref
from shoal.ctl import dockerconfig


def request_fields(image: str, flags: dict[str, Any]) -> dict[str, Any]:
    """The CreateService/UpdateService request fields the flags ask for (beside the spec)."""
    fields: dict[str, Any] = {"no_resolve_image": bool(flags.get("no_resolve_image"))}
    if flags.get("with_registry_auth"):
        auth = dockerconfig.credentials_for(image)
        if auth is None:
            registry = imageref.parse(image).config_key
            raise errors.FailedPrecondition(
                f"--with-registry-auth: {dockerconfig.config_path()} has no credentials for {registry} "
                f"(docker login {registry})"
            )
        fields["registry_auth"] = auth
    return fields


def echo_warnings(warnings: Iterable[str]) -> None:
    """The controller's warnings, one line each on stderr."""
    for warning in warnings:
        click.echo(f"swarmctl: warning: {warning}", err=True)


def image_fields(container: Any) -> list[tuple[str, str]]:
    """`service inspect` lines: the image as given (its tag), the digest it is pinned to, the credentials."""
    image, _, digest = container.image.partition("@")
    fields = [("Image", image)]
    fields.append(("Image digest", digest or "- (not pinned: each node pulls the tag)"))
    if container.registry_auth_id:
        fields.append(("Registry auth", "sent with the spec (stored sealed)"))
    return fields
