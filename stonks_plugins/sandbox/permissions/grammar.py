"""The grammar of declared permissions (``network:HOST[:PORT]``, ``read:PATH``, ``write:PATH``,
``subprocess:PROGRAM``, ``env:NAME``) and the host rules it yields."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import NamedTuple

from ...manifest.model import PERMISSION_PATTERN, ecma_pattern

KINDS = ("network", "read", "write", "subprocess", "env")
TMPDIR_TOKEN = "$TMPDIR"
_PERMISSION = re.compile(ecma_pattern(PERMISSION_PATTERN))


class Permission(NamedTuple):
    kind: str
    """One of :data:`KINDS`."""
    value: str
    """What follows the first colon, as written."""

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def parse(text: str) -> Permission:
    """``text`` as a :class:`Permission`; ``ValueError`` naming the grammar when it is none."""
    if not isinstance(text, str) or _PERMISSION.search(text) is None:
        raise ValueError(
            f"{text!r} is not a permission: expected network:HOST[:PORT], read:PATH, "
            "write:PATH, subprocess:PROGRAM or env:NAME"
        )
    kind, _, value = text.partition(":")
    return Permission(kind, value)


def normal_host(host: str) -> str:
    """A host as rules compare it: lower case, no brackets or final dot, IP literals in
    their canonical form (an IPv4-mapped IPv6 address as the IPv4 one)."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = host.split("%", 1)[0]  # an IPv6 zone ("fe80::1%eth0") names no other host
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


@dataclass(frozen=True)
class HostRule:
    """One ``network:`` permission: ``host`` is ``*`` (any), ``*.domain`` (its subdomains)
    or one host; ``port`` None means any port."""

    host: str
    port: int | None
    text: str

    @classmethod
    def parse(cls, value: str) -> HostRule:
        host, port = value, None
        if value.startswith("["):
            inside, _, rest = value[1:].partition("]")
            host = inside
            if rest.startswith(":"):
                port = int(rest[1:])
        elif ":" in value:
            host, _, digits = value.rpartition(":")
            port = int(digits)
        wildcard = host == "*" or host.startswith("*.")
        return cls(host.lower() if wildcard else normal_host(host), port, f"network:{value}")

    def allows(self, host: str, port: int | None) -> bool:
        """``host`` (normalised) on ``port`` (None: any, as for a name lookup)."""
        if self.port is not None and port is not None and port != self.port:
            return False
        rule = self.host
        if rule == "*":
            return True
        if rule.startswith("*."):
            return host.endswith(rule[1:])
        return host == rule
