"""The guard's checks of the network: connections, listening sockets and name lookups, a
connection to an address counting as one to the declared host name it was looked up from."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from .file_checks import FileChecks, fsdecode
from .grammar import normal_host

_ANY_PORT: None = None


def _shown(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class NetworkChecks(FileChecks):
    """Audit event handlers for sockets, checked against ``policy.may_connect``. A Unix
    socket is a file: connecting to one needs the right to write it."""

    _resolved: dict[str, set[str]]
    """IP address -> declared host names it was looked up from (see _wrap_lookups)."""
    _own_names: frozenset[str]
    """This machine's own names, which it may look up."""

    def _connect(self, action: str) -> Callable[[tuple[Any, ...]], None]:
        def check(args: tuple[Any, ...]) -> None:
            sock, address = args[0], args[1]
            if address is None:
                return  # sendto/sendmsg on a connected socket: checked at connect
            family = getattr(sock, "family", None)
            if family == socket.AF_UNIX:
                self._unix(action, address)
                return
            if family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
                self._refuse(
                    action,
                    f"a socket of family {family!r}",
                    None,
                    "only IPv4 and IPv6 hosts (network:HOST[:PORT]) can be declared",
                )
            host = address[0]
            if isinstance(host, bytes):
                host = host.decode("ascii", "replace")
            host = normal_host(host or "0.0.0.0")
            port = address[1] if isinstance(address[1], int) else None
            if self.policy.may_connect(host, port):
                return
            for name in self._resolved.get(host, ()):
                if self.policy.may_connect(name, port):
                    return
            self._refuse(action, _shown(host, port), f"network:{_shown(host, port)}")

        return check

    def _unix(self, action: str, address: Any) -> None:
        path = fsdecode(address)
        if path is None or path.startswith("\0") or not path:
            self._refuse(
                action, "an abstract Unix socket", None, "abstract Unix sockets cannot be declared"
            )
        self._check_write(path)  # as the system decides: connecting needs write access

    def _lookup(self, args: tuple[Any, ...]) -> None:
        host = args[0]
        if host is None:
            return  # the local addresses (a server's bind): no lookup
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        name = normal_host(str(host))
        if not name or self.policy.may_connect(name, _ANY_PORT) or name in self._resolved:
            return
        if name in self._own_names:
            return  # this machine's own names (socket.getfqdn): a lookup, not a connection
        # A lookup is for a connection (getaddrinfo's port is the one it will go to): the
        # permission to declare is the connection's.
        port = args[1] if len(args) > 1 and isinstance(args[1], int) else None
        action = "look up" if port is None else "connect to"
        self._refuse(action, _shown(name, port), f"network:{_shown(name, port)}")

    def _lookup_address(self, args: tuple[Any, ...]) -> None:
        sockaddr = args[0]
        if isinstance(sockaddr, tuple) and sockaddr:
            self._lookup((sockaddr[0],))

    def _wrap_lookups(self) -> None:
        """Learn the addresses declared host names resolve to, so a connection to one of
        them (what ``create_connection`` and every HTTP client make) is the declared host's.
        ``socket.getaddrinfo`` is looked up on the module at each call, by the standard
        library and by urllib3, httpx and asyncio alike."""
        lookup = socket.getaddrinfo
        resolved = self._resolved
        policy = self.policy

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            found = lookup(host, *args, **kwargs)
            if isinstance(host, (str, bytes)):
                name = normal_host(os.fsdecode(host))
                if policy.may_connect(name, _ANY_PORT):
                    for entry in found:
                        resolved.setdefault(normal_host(str(entry[4][0])), set()).add(name)
            return found

        getaddrinfo.__doc__ = lookup.__doc__
        socket.getaddrinfo = getaddrinfo
