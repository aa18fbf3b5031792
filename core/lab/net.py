"""The lab's network: a bridge on this machine, one namespace per host, a veth pair each.

Built with iproute2 and iptables commands (the lab already runs nsenter and
dockerd as programs, and these read like their documentation). Every rule
this module adds carries the comment `<prefix>-lab`, so teardown finds them
all even after a crash. Cutting a host off takes its veth down on this side:
nothing reaches it, and it reaches nothing, until it is healed.
"""

from __future__ import annotations

import subprocess

from shoal import errors
from shoal.lab.spec import Host, LabSpec


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one command; a failure is one line naming it."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise errors.FailedPrecondition(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def veth(host: Host) -> str:
    """The machine-side end of a host's veth pair (interface names are at most 15 characters)."""
    return f"v{host.netns.replace('-', '')}"[:15]


def _rule(spec: LabSpec) -> list[str]:
    # Docker sets FORWARD's policy to DROP and bridged traffic passes iptables (br_netfilter):
    # let the lab's hosts talk to each other.
    return [
        "FORWARD",
        "-i",
        spec.bridge,
        "-o",
        spec.bridge,
        "-j",
        "ACCEPT",
        "-m",
        "comment",
        "--comment",
        f"{spec.prefix}-lab",
    ]


def create_bridge(spec: LabSpec) -> None:
    """The lab bridge with this machine's address on it, and the forwarding rule."""
    if run("ip", "link", "show", spec.bridge, check=False).returncode != 0:
        run("ip", "link", "add", spec.bridge, "type", "bridge")
    run("ip", "addr", "replace", f"{spec.gateway}/{spec.network.prefixlen}", "dev", spec.bridge)
    run("ip", "link", "set", spec.bridge, "up")
    if run("iptables", "-C", *_rule(spec), check=False).returncode != 0:
        run("iptables", "-I", *_rule(spec))


def add_host(spec: LabSpec, host: Host) -> None:
    """A namespace for `host`, wired to the bridge, with its address and a default route to the machine."""
    if host.netns not in namespaces(spec):
        run("ip", "netns", "add", host.netns)
    end = veth(host)
    if run("ip", "-n", host.netns, "link", "show", "eth0", check=False).returncode != 0:
        # A machine-side end without its peer here is left from an earlier namespace of that name.
        run("ip", "link", "delete", end, check=False)
        run("ip", "link", "add", end, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
    run("ip", "link", "set", end, "master", spec.bridge, "up")
    run("ip", "-n", host.netns, "addr", "replace", f"{host.ip}/{spec.network.prefixlen}", "dev", "eth0")
    run("ip", "-n", host.netns, "link", "set", "eth0", "up")
    run("ip", "-n", host.netns, "link", "set", "lo", "up")
    run("ip", "-n", host.netns, "route", "replace", "default", "via", spec.gateway)


def cut(host: Host) -> None:
    """Cut the host off the lab network (both ways)."""
    run("ip", "link", "set", veth(host), "down")


def heal(host: Host) -> None:
    """Connect a cut host again."""
    run("ip", "link", "set", veth(host), "up")


def namespaces(spec: LabSpec) -> list[str]:
    """The lab's namespaces that exist now (found by name prefix)."""
    out = run("ip", "netns", "list", check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [n for n in names if n.startswith(f"{spec.prefix}-")]


def teardown(spec: LabSpec) -> None:
    """Remove every namespace (killing what still runs in it), every veth, the bridge and the rules of the lab."""
    for ns in namespaces(spec):
        # Whatever still runs there (a container shim of a crashed lab) would keep the namespace alive.
        for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
            run("kill", "-9", pid, check=False)
        run("ip", "netns", "delete", ns, check=False)
    for host in spec.hosts:
        run("ip", "link", "delete", veth(host), check=False)
    run("ip", "link", "delete", spec.bridge, check=False)
    while run("iptables", "-D", *_rule(spec), check=False).returncode == 0:
        pass


def nsenter(host: Host) -> list[str]:
    """The command prefix that runs a program in the host's network namespace (and nothing else:
    `ip netns exec` would remount /sys and hide cgroups from dockerd)."""
    return ["nsenter", f"--net=/run/netns/{host.netns}"]
