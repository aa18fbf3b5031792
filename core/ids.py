"""Random object IDs: 25 characters of base 36, about 128 bits, like SwarmKit's."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 25


def new_id() -> str:
    """A fresh random ID; its first character is a letter so it never parses as a number.

    One draw of random bits per ID (the scheduler's and orchestrator's hot paths make thousands).
    """
    n = secrets.randbits(136)
    n, first = divmod(n, 26)
    chars = [_ALPHABET[10 + first]]
    for _ in range(ID_LENGTH - 1):
        n, r = divmod(n, 36)
        chars.append(_ALPHABET[r])
    return "".join(chars)
