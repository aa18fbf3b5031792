"""Registry credentials from the user's Docker config, found the way the docker CLI finds them.

`$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`): a registry
named in `credHelpers` asks that helper, else `credsStore` names the helper
for every registry, else the `auths` entry is used (`auth` is base64
"user:password"; `identitytoken` an OAuth2 refresh token). A helper is the
program `docker-credential-<name>`, given the registry on stdin to its `get`
command, answering `{"ServerURL", "Username", "Secret"}` (Username "<token>"
means Secret is an identity token).
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
from typing import Any

from shoal import errors, imageref
from shoal.v1 import types_pb2

#: A credential helper that does not answer within this is reported, not waited for.
HELPER_TIMEOUT = 30.0


def config_path() -> pathlib.Path:
    """Where the Docker config lives: $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    root = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return pathlib.Path(root) / "config.json"


def _load(path: pathlib.Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise errors.InvalidArgument(f"cannot read the Docker config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise errors.InvalidArgument(f"the Docker config {path} is not a JSON object")
    return data


def _from_auths(auths: dict[str, Any], key: str) -> types_pb2.RegistryAuth | None:
    """The `auths` entry for the registry: its exact key, else any key naming the same host."""
    host = imageref.hostname(key)
    entry = auths.get(key)
    if entry is None:
        entry = next((v for k, v in auths.items() if imageref.hostname(k) == host), None)
    if not isinstance(entry, dict):
        return None
    auth = types_pb2.RegistryAuth(server_address=key)
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidArgument(f"the Docker config's auth for {key} is not base64 user:password") from None
        auth.username, auth.password = user, password
    else:
        auth.username, auth.password = str(entry.get("username", "")), str(entry.get("password", ""))
    auth.identity_token = str(entry.get("identitytoken", ""))
    if not (auth.username or auth.password or auth.identity_token):
        return None
    return auth


def _from_helper(helper: str, key: str) -> types_pb2.RegistryAuth | None:
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run(
            [program, "get"], input=key, capture_output=True, text=True, timeout=HELPER_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise errors.FailedPrecondition(f"credential helper {program} is not installed (Docker config)") from None
    except subprocess.TimeoutExpired:
        raise errors.Unavailable(f"credential helper {program} did not answer in {HELPER_TIMEOUT:g}s") from None
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        lines = (result.stderr or result.stdout).strip().splitlines()
        reason = lines[0] if lines else f"exit status {result.returncode}"
        raise errors.FailedPrecondition(f"credential helper {program} failed: {reason}")
    try:
        answer = json.loads(result.stdout)
        username, secret = str(answer.get("Username", "")), str(answer.get("Secret", ""))
    except (ValueError, AttributeError):
        raise errors.FailedPrecondition(f"credential helper {program} answered something that is not JSON") from None
    if username == "<token>":
        return types_pb2.RegistryAuth(identity_token=secret, server_address=key)
    return types_pb2.RegistryAuth(username=username, password=secret, server_address=key)


def credentials_for(image: str) -> types_pb2.RegistryAuth | None:
    """The credentials the Docker config holds for `image`'s registry, or None if it holds none."""
    try:
        ref = imageref.parse(image)
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc)) from None
    key = ref.config_key
    config = _load(config_path())
    helpers = config.get("credHelpers") or {}
    helper = helpers.get(key) or helpers.get(imageref.hostname(key)) or config.get("credsStore")
    if helper:
        return _from_helper(str(helper), key)
    return _from_auths(config.get("auths") or {}, key)
