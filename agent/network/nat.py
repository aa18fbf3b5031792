"""NAT for virtual IPs and the routing mesh: the agent's nftables tables, replaced whole, and one iptables rule.

The tables are rendered by `desired.ruleset` and loaded with `nft -f -`,
which applies a script as one transaction: a node never has half a ruleset.
(We shell out to nft rather than drive nftables' netlink API by hand: the
script is the documented interface, and one call per change is cheap.)

Docker filters forwarded traffic in iptables (its FORWARD chain may drop
what it did not publish itself). A DNAT of ours that sends traffic into an
overlay bridge is accepted in DOCKER-USER, the chain Docker keeps for its
users, with a rule that carries the comment `shoal`.
"""

from __future__ import annotations

import asyncio
import logging

from shoal.agent.network import desired

log = logging.getLogger(__name__)

#: The rule in DOCKER-USER: connections we DNAT into an overlay bridge pass Docker's FORWARD chain.
FORWARD_RULE = (
    "DOCKER-USER",
    "-o",
    f"{desired.BRIDGE_PREFIX}+",
    "-m",
    "conntrack",
    "--ctstate",
    "DNAT",
    "-m",
    "comment",
    "--comment",
    "shoal",
    "-j",
    "ACCEPT",
)


class NatError(Exception):
    """nft or iptables refused what the agent asked."""


async def _run(*argv: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode or 0, err.decode(errors="replace").strip()


async def load(script: str) -> None:
    """Apply an nftables script in one transaction."""
    code, err = await _run("nft", "-f", "-", stdin=script)
    if code != 0:
        raise NatError(f"nft: {err.splitlines()[0] if err else code}")


async def clear() -> None:
    """Remove the agent's tables."""
    await load(desired.teardown_script())


async def allow_forwarding(on: bool) -> None:
    """Add (on) or remove (off) the DOCKER-USER rule; nothing to do where Docker made no such chain."""
    present = (await _run("iptables", "-C", *FORWARD_RULE))[0] == 0
    if on and not present:
        code, err = await _run("iptables", "-I", *FORWARD_RULE)
        if code != 0 and "No chain" not in err:
            raise NatError(f"iptables: {err}")
    while not on and present:
        await _run("iptables", "-D", *FORWARD_RULE)
        present = (await _run("iptables", "-C", *FORWARD_RULE))[0] == 0
