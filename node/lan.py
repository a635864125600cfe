"""The addresses the school's other computers can open, for `preau serve` to print.

Listening on 0.0.0.0 means "every address of this machine", which no browser
can open; `http://127.0.0.1` only works on the box itself. So `serve` prints
the machine's own non-loopback IPv4 addresses, read from its network
interfaces (nothing is sent on the network to find them).
"""
from __future__ import annotations

import ipaddress
import socket
import struct
import sys

WILDCARDS = ("", "0.0.0.0", "::", "*")
_SIOCGIFADDR = 0x8915  # Linux: the IPv4 address of an interface


def _interface_addresses() -> list[str]:
    """Every interface's IPv4 address (Linux ioctl); elsewhere, the host name's addresses."""
    found: list[str] = []
    if sys.platform.startswith("linux"):
        import fcntl

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                except OSError:  # an interface without an IPv4 address
                    continue
                found.append(socket.inet_ntoa(raw[20:24]))
    if not found:
        try:
            found = [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
        except OSError:
            found = []
    return found


def lan_addresses(host: str) -> list[str]:
    """The addresses to print for a node listening on `host`: its own if it is one, else every usable one."""
    if host not in WILDCARDS:
        return [host]
    out: list[str] = []
    for text in _interface_addresses():
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or text in out:
            continue
        # Docker's and other bridges' addresses are not on the school's network: list them last.
        out.append(text)
    return sorted(out, key=lambda a: (a.startswith("172.17.") or a.startswith("172.18."), a))


def lan_urls(host: str, port: int, scheme: str = "http") -> list[str]:
    return [f"{scheme}://{a if ':' not in a else '[' + a + ']'}:{port}" for a in lan_addresses(host)]
