"""Random object IDs: 25 characters of base 36, about 128 bits, like SwarmKit's."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 25


def new_id() -> str:
    """A fresh random ID; its first character is a letter so it never parses as a number."""
    n = secrets.randbits(128)
    chars = []
    for _ in range(ID_LENGTH - 1):
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return secrets.choice(_ALPHABET[10:]) + "".join(chars)
