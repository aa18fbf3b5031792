"""Registry credentials from a Docker config, as the docker CLI finds them (auths, credHelpers, credsStore)."""

from __future__ import annotations

import base64
import json
import pathlib

import pytest

from shoal import errors
from shoal.ctl import dockerconfig


@pytest.fixture
def config_dir(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def write(config_dir: pathlib.Path, config: dict) -> None:  # type: ignore[type-arg]
    (config_dir / "config.json").write_text(json.dumps(config))


def test_auths_entries(config_dir: pathlib.Path) -> None:
    token = base64.b64encode(b"alice:s3cret").decode()
    write(config_dir, {"auths": {"reg.example:5000": {"auth": token}, "https://index.docker.io/v1/": {
        "username": "bob", "password": "hub"}, "https://other.example/v2/": {"identitytoken": "tok"}}})
    auth = dockerconfig.credentials_for("reg.example:5000/team/app:1")
    assert (auth.username, auth.password, auth.server_address) == ("alice", "s3cret", "reg.example:5000")
    assert dockerconfig.credentials_for("busybox").username == "bob"  # Docker Hub's key
    assert dockerconfig.credentials_for("other.example/app@sha256:" + "a" * 64).identity_token == "tok"  # by host
    assert dockerconfig.credentials_for("nowhere.example/app:1") is None


def test_no_config_is_no_credentials(config_dir: pathlib.Path) -> None:
    assert dockerconfig.credentials_for("reg.example/app:1") is None
    (config_dir / "config.json").write_text("{not json")
    with pytest.raises(errors.InvalidArgument, match="cannot read the Docker config"):
        dockerconfig.credentials_for("reg.example/app:1")


def test_credential_helpers(config_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-shoaltest"
    # A helper by the protocol: `get` reads the server on stdin and answers JSON (or "credentials not found").
    helper.write_text(
        '#!/bin/sh\nread server\ncase "$server" in\n'
        '  reg.example) echo \'{"ServerURL":"reg.example","Username":"carol","Secret":"pw"}\' ;;\n'
        '  tok.example) echo \'{"ServerURL":"tok.example","Username":"<token>","Secret":"refresh"}\' ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n'
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    write(config_dir, {"credHelpers": {"reg.example": "shoaltest"}, "auths": {"reg.example": {"auth": "eDp5"}}})
    auth = dockerconfig.credentials_for("reg.example/app:1")
    assert (auth.username, auth.password) == ("carol", "pw")  # the helper wins over auths
    write(config_dir, {"credsStore": "shoaltest"})
    assert dockerconfig.credentials_for("tok.example/app:1").identity_token == "refresh"
    assert dockerconfig.credentials_for("none.example/app:1") is None
    write(config_dir, {"credsStore": "missing"})
    with pytest.raises(errors.FailedPrecondition, match="docker-credential-missing is not installed"):
        dockerconfig.credentials_for("reg.example/app:1")
