"""Sealing secrets for storage: AES-256-GCM under the controllers' data key.

The data key is a file every controller of a cluster holds (by default
`<state-dir>/data.key`, made on first start); etcd only ever sees
ciphertext. Each sealed value names the key it was sealed with and is bound
to its secret's ID, so a value cannot be moved to another secret, and a
controller with the wrong key says so instead of returning garbage.
"""

from __future__ import annotations

import hashlib
import os
import pathlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shoal import errors

_VERSION = b"S1"
_KEY_ID_LEN = 8
_NONCE_LEN = 12


class Sealer:
    """Seals and opens secret data with one data key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the data key must be 32 bytes")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).digest()[:_KEY_ID_LEN]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Sealer:
        """The data key in `path`, made (32 random bytes, mode 0600) if the file does not exist."""
        p = pathlib.Path(path)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        return cls(p.read_bytes())

    def seal(self, data: bytes, bound_to: str) -> bytes:
        """Ciphertext of `data`, bound to the object ID `bound_to`."""
        nonce = os.urandom(_NONCE_LEN)
        return _VERSION + self.key_id + nonce + self._aead.encrypt(nonce, data, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        """The plaintext of a sealed value; FailedPrecondition if this key cannot open it."""
        head = len(_VERSION) + _KEY_ID_LEN
        if sealed[: len(_VERSION)] != _VERSION or sealed[len(_VERSION) : head] != self.key_id:
            raise errors.FailedPrecondition("secret sealed under another data key (check --data-key-file)")
        nonce, ciphertext = sealed[head : head + _NONCE_LEN], sealed[head + _NONCE_LEN :]
        try:
            return self._aead.decrypt(nonce, ciphertext, bound_to.encode())
        except InvalidTag:
            raise errors.FailedPrecondition("secret data failed authentication") from None
