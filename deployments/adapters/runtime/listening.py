"""What a container listens on, read from its /proc/net/tcp and tcp6, and what to tell a
user whose app does not answer on $PORT (Render finds the port the same way)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LISTEN = "0A"  # the kernel's TCP_LISTEN state, in hex


@dataclass(frozen=True)
class Listener:
    host: str  # "0.0.0.0", "::", "127.0.0.1"…
    port: int

    @property
    def everywhere(self) -> bool:
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_proc_net(text: str) -> list[Listener]:
    """Listening sockets in /proc/net/tcp{,6} text (both files may be concatenated)."""
    found: list[Listener] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        address, _, port = fields[1].partition(":")
        try:
            listener = Listener(_host(address), int(port, 16))
        except ValueError:
            continue
        if listener not in found:
            found.append(listener)
    return sorted(found, key=lambda item: (item.port, item.host))


def _host(hex_address: str) -> str:
    """The kernel prints each 32-bit word of the address in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16):
        raise ValueError(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def other_port(listeners: list[Listener], port: int) -> int | None:
    """The one port the app listens on everywhere when it is not `port`; None if the app
    listens on `port`, or on none or several other ports (ambiguous: no guess)."""
    everywhere = {item.port for item in listeners if item.everywhere}
    if port in everywhere or len(everywhere) != 1:
        return None
    return everywhere.pop()


def hint(listeners: list[Listener], port: int) -> str:
    """One sentence on what to change, from what the container listens on."""
    if not listeners:
        return (
            "The container listens on no TCP port: the app never opened one (does its start "
            f"command start a server? Bind 0.0.0.0:$PORT, here {port})."
        )
    shown = ", ".join(str(item) for item in listeners)
    if not any(item.everywhere for item in listeners):
        return f"The app listens on {shown} only: bind 0.0.0.0 (all interfaces) instead."
    if any(item.everywhere and item.port == port for item in listeners):
        return f"The app listens on {shown}, $PORT included, but did not answer HTTP in time."
    return (
        f"The app listens on {shown}, not on $PORT ({port}): set the app's port to the one it "
        "uses, or make it read $PORT."
    )
