"""iptables rules that keep builds and app containers off the host and non-public networks.

Every app network and the build network take their subnet from PAAS_NETWORK_POOL, so one
source match covers them all. Two chains per installation, named after PAAS_INSTANCE so
that two installations (and the test suite) each own theirs:

- `<INSTANCE>-EGRESS`, jumped to first from Docker's DOCKER-USER (FORWARD): the pool's
  traffic to a non-public address (egress.BLOCKED_V4) is rejected. Traffic that stays in
  the pool RETURNs, and Docker's own rules decide: its isolation chains still drop one
  bridge to another, and a bridge to itself (an app and its add-ons; with br_netfilter
  that traverses FORWARD too) is accepted as before.
- `<INSTANCE>-HOST`, jumped to first from INPUT: the pool's new connections to any host
  address (a service bound to 0.0.0.0 answers on every bridge's gateway) are rejected.
  Replies to the host's own connections (Traefik, the health check) pass as ESTABLISHED.

PAAS_EGRESS_ALLOW's networks RETURN in both chains. The host's nameservers keep port 53
open when they are not public: Docker's embedded DNS forwards a container's queries from
the container's own namespace, so they traverse FORWARD. REJECT, not DROP: a build or app
that tries gets "no route to host" at once rather than hanging on a timeout.

IPv6: Slipway's networks are IPv4 only and Docker disables IPv6 inside their containers;
where ip6tables exists the same chains guard user-defined bridges (`br-+`) as a second
wall, leaving ICMPv6 to the host alone (neighbour discovery).

Each chain is refilled in one iptables-restore transaction, so re-applying is idempotent
and never leaves a moment without rules.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_address
from pathlib import Path

from deployments.adapters.egress import BLOCKED_V4, BLOCKED_V6, IPNetwork

FORWARD_HOOK = "DOCKER-USER"  # Docker's chain for user rules, jumped to first from FORWARD
INPUT_HOOK = "INPUT"
V6_BRIDGES = "br-+"  # Docker's user-defined bridges
CHAIN_NAME_MAX = 28  # xtables' limit
TIMEOUT_SECONDS = 20  # `-w` waits for another xtables user's lock


class FirewallError(Exception):
    """iptables is missing or refused a rule (not root, say)."""


@dataclass
class Firewall:
    instance: str
    pool: IPv4Network
    allow: list[IPNetwork] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)  # the host's, in resolv.conf

    @property
    def egress_chain(self) -> str:
        return self._chain("EGRESS")

    @property
    def host_chain(self) -> str:
        return self._chain("HOST")

    def apply(self) -> None:
        """Install or refresh the rules (idempotent)."""
        self._apply_family("iptables", self._rules_v4(), FORWARD_HOOK, ())
        if self._has("ip6tables"):
            self._apply_family("ip6tables", self._rules_v6(), "FORWARD", ("-i", V6_BRIDGES))

    def remove(self) -> None:
        """Take the jumps and chains out again (idempotent)."""
        self._remove_family("iptables", FORWARD_HOOK, ())
        if self._has("ip6tables"):
            self._remove_family("ip6tables", "FORWARD", ("-i", V6_BRIDGES))

    def is_applied(self) -> bool:
        """Both jumps of IPv4 are in place (the chains they lead to come with them)."""
        return self._jumps_in_place("iptables", FORWARD_HOOK, ())

    def show(self) -> str:
        """The chains as iptables lists them, for an operator."""
        parts = []
        for tool in ("iptables", "ip6tables"):
            if tool == "iptables" or self._has(tool):
                for chain in (self.egress_chain, self.host_chain):
                    parts.append(f"# {tool}\n" + self._run(tool, "-S", chain, check=False))
        return "\n".join(parts)

    # --- the rules ------------------------------------------------------------------------

    def _rules_v4(self) -> dict[str, list[str]]:
        pool = f"! -s {self.pool} -j RETURN"
        egress = [pool, _ESTABLISHED, f"-d {self.pool} -j RETURN"]
        egress += self._allowed(4) + self._dns(4)
        egress += [f"-d {net} -j REJECT --reject-with icmp-admin-prohibited" for net in BLOCKED_V4]
        host = [pool, _ESTABLISHED, *self._allowed(4)]
        host.append("-j REJECT --reject-with icmp-admin-prohibited")
        return {self.egress_chain: egress, self.host_chain: host}

    def _rules_v6(self) -> dict[str, list[str]]:
        # Jumped to for `-i br-+` only; `-o br-+`: bridge to bridge, Docker decides.
        egress = [_ESTABLISHED, f"-o {V6_BRIDGES} -j RETURN", *self._allowed(6), *self._dns(6)]
        egress += [f"-d {net} -j REJECT --reject-with icmp6-adm-prohibited" for net in BLOCKED_V6]
        host = [_ESTABLISHED, "-p ipv6-icmp -j RETURN", *self._allowed(6)]
        host.append("-j REJECT --reject-with icmp6-adm-prohibited")
        return {self.egress_chain: egress, self.host_chain: host}

    def _allowed(self, version: int) -> list[str]:
        return [f"-d {net} -j RETURN" for net in self.allow if net.version == version]

    def _dns(self, version: int) -> list[str]:
        servers = [s for s in self.nameservers if ip_address(s).version == version]
        return [
            f"-d {s} -p {proto} --dport 53 -j RETURN" for s in servers for proto in ("udp", "tcp")
        ]

    # --- iptables -------------------------------------------------------------------------

    def _apply_family(self, tool: str, chains: dict[str, list[str]], forward: str, match) -> None:
        if tool == "iptables" and not self._chain_exists(tool, forward):
            self._run(tool, "-N", forward)  # dockerd makes it at start, and keeps ours then
        self._restore(tool, chains)
        for hook, chain in ((forward, self.egress_chain), (INPUT_HOOK, self.host_chain)):
            if not self._jump_exists(tool, hook, chain, match):
                self._run(tool, "-I", hook, "1", *match, "-j", chain)

    def _remove_family(self, tool: str, forward: str, match) -> None:
        for hook, chain in ((forward, self.egress_chain), (INPUT_HOOK, self.host_chain)):
            while self._jump_exists(tool, hook, chain, match):
                self._run(tool, "-D", hook, *match, "-j", chain)
            if self._chain_exists(tool, chain):
                self._run(tool, "-F", chain)
                self._run(tool, "-X", chain)

    def _jumps_in_place(self, tool: str, forward: str, match) -> bool:
        return self._jump_exists(tool, forward, self.egress_chain, match) and self._jump_exists(
            tool, INPUT_HOOK, self.host_chain, match
        )

    def _restore(self, tool: str, chains: dict[str, list[str]]) -> None:
        # A chain declared in --noflush mode is created or emptied, then filled: one commit.
        lines = ["*filter", *(f":{chain} - [0:0]" for chain in chains)]
        lines += [f"-A {chain} {rule}" for chain, rules in chains.items() for rule in rules]
        lines.append("COMMIT\n")
        self._run(f"{tool}-restore", "--noflush", stdin="\n".join(lines))

    def _jump_exists(self, tool: str, hook: str, chain: str, match) -> bool:
        if not self._chain_exists(tool, hook):
            return False
        return self._succeeds(tool, "-C", hook, *match, "-j", chain)

    def _chain_exists(self, tool: str, chain: str) -> bool:
        return self._succeeds(tool, "-S", chain)

    def _chain(self, suffix: str) -> str:
        prefix = self.instance.upper()[: CHAIN_NAME_MAX - len(suffix) - 1]
        return f"{prefix}-{suffix}"

    def _has(self, tool: str) -> bool:
        return shutil.which(tool) is not None and self._succeeds(tool, "-S", INPUT_HOOK)

    def _succeeds(self, tool: str, *args: str) -> bool:
        return self._execute(tool, args).returncode == 0

    def _run(self, tool: str, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = self._execute(tool, args, stdin)
        if check and done.returncode != 0:
            raise FirewallError(f"{tool} {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def _execute(self, tool: str, args, stdin: str | None = None) -> subprocess.CompletedProcess:
        if shutil.which(tool) is None:
            raise FirewallError(f"{tool} is not installed: the egress rules need it")
        command = [tool, "-w", str(TIMEOUT_SECONDS), *args]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS + 10
        )


_ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"


def host_nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The nameservers Docker hands its embedded DNS (loopback ones it drops itself)."""
    servers = []
    for line in resolv_conf.read_text().splitlines() if resolv_conf.exists() else []:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                address = ip_address(words[1].split("%")[0])
            except ValueError:
                continue
            if not address.is_loopback:
                servers.append(str(address))
    return servers
