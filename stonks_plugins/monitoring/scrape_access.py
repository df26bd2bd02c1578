"""Who may read ``/metrics``: a Prometheus on the same host without anything, any other only
with ``Authorization: Bearer <PLUGINS_METRICS_TOKEN>``.

The metrics name plugins, their states and error codes - nothing secret, but not for the
whole internet either. A request a proxy forwarded (``X-Forwarded-For``, ``Forwarded``,
``X-Real-IP``) is not loopback, whatever address the proxy connects from: a reverse proxy on
the same host would otherwise open ``/metrics`` to everyone behind it. Without a token
configured, other hosts get 403 (nothing they could send would do); with one, a missing or
wrong token gets 401. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from ..conf import plugin_settings

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@dataclass(frozen=True)
class Verdict:
    status: int
    """200 (go ahead), 401 (a token is needed, or the one sent is wrong) or 403."""
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.status == 200


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def check(meta: Mapping[str, str]) -> Verdict:
    """The verdict on a request, from its WSGI environ (``request.META``)."""
    forwarded = any(meta.get(h) for h in FORWARDING_HEADERS)
    if not forwarded and is_loopback(meta.get("REMOTE_ADDR", "")):
        return Verdict(200)
    token = str(plugin_settings.METRICS_TOKEN or "")
    if not token:
        return Verdict(
            403, "/metrics answers loopback clients only: set PLUGINS_METRICS_TOKEN for others"
        )
    scheme, _, given = meta.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return Verdict(401, "send Authorization: Bearer <PLUGINS_METRICS_TOKEN>")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return Verdict(401, "the bearer token is wrong")
    return Verdict(200)
