"""The list of controller addresses a client knows, and which one to try next.

Agents and swarmctl are given several controllers. They stick to one while it
answers, move on when it fails, and jump to the leader when a follower names it.
"""

from __future__ import annotations


class Remotes:
    """Controller addresses in the order to try them; the current one first."""

    def __init__(self, addrs: list[str]) -> None:
        if not addrs:
            raise ValueError("at least one controller address is needed")
        self._addrs = list(dict.fromkeys(addrs))

    @property
    def current(self) -> str:
        """The address to use now."""
        return self._addrs[0]

    @property
    def all(self) -> list[str]:
        """Every known address, current first."""
        return list(self._addrs)

    def failed(self, addr: str) -> None:
        """`addr` did not answer: try the others before it again."""
        if addr in self._addrs and len(self._addrs) > 1:
            self._addrs.remove(addr)
            self._addrs.append(addr)

    def prefer(self, addr: str) -> None:
        """`addr` is the leader: use it next (learning it if it is new)."""
        if addr in self._addrs:
            self._addrs.remove(addr)
        self._addrs.insert(0, addr)

    def update(self, addrs: list[str]) -> None:
        """Put what the cluster says first (leader first); keep the others known, to try last.

        A leader's list can be short (a controller that started a moment ago is
        not in it yet): forgetting the addresses one was configured with would
        leave a node with nowhere to go when that leader stops answering.
        """
        if addrs:
            self._addrs = list(dict.fromkeys([*addrs, *self._addrs]))
