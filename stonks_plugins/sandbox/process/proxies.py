"""Objects that stand in the host for a plugin's service whose code runs in its child.

The core and the registry's version adapters (``serve_v1``, ``get_service_v2``) recognise a
service by ``isinstance`` against its interface, so a proxy is built as a subclass of the
interface the child reports its class implements (v1 or v2): a v2 plugin in a child is then
adapted for the v1 pages exactly like one in-process, and a v2 consumer gets its records
natively.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from stonks_overwatch.core.service_types import ServiceType

if TYPE_CHECKING:
    from .host import ProcessHost


class ServiceProxy:
    """Stands for a plugin's service in the host; every public method runs in the child.

    Built by :meth:`ProcessHost.service_proxy` as a subclass of the interface the service's
    class implements (v1 or v2), so the core and the version adapters can use it like the
    service instance it would have built in-process.
    """

    interface: ClassVar[type | None] = None
    """The interface this proxy class implements."""

    def __init__(
        self, host: ProcessHost, service_type: ServiceType, config: dict[str, Any] | Any | None
    ) -> None:
        if config is not None and not isinstance(config, dict):
            config = config.to_dict()
        self.host = host
        self.service_type = service_type
        self.config = config

    def __getattr__(self, name: str) -> Callable[..., Any]:
        """Methods the interface does not declare, forwarded all the same."""
        if name.startswith("_"):
            raise AttributeError(name)
        method = forwarder(name).__get__(self)
        setattr(self, name, method)
        return method

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of plugin '{self.host.name}' (pid {self.host.pid})>"


def forwarder(name: str) -> Callable[..., Any]:
    """The method ``name`` of a :class:`ServiceProxy`: a call in the child."""

    def forward(self: ServiceProxy, *args: Any, **kwargs: Any) -> Any:
        return self.host.call(self.service_type.value, name, *args, config=self.config, **kwargs)

    forward.__name__ = name
    return forward


def implementing(base: type, interface: type, forwarder: Callable[[str], Any]) -> type:
    """A class of ``base`` that is also an ``interface`` (so ``isinstance`` checks, and the
    version adapters, treat it as the service it stands for), whose abstract methods are
    ``forwarder(name)`` - an ABC needs them defined to be instantiated. Generated once per
    pair; the class attribute ``interface`` names what it implements."""
    methods = sorted(getattr(interface, "__abstractmethods__", ()))
    namespace: dict[str, Any] = {m: forwarder(m) for m in methods}
    namespace.update(
        interface=interface,
        __init__=vars(base)["__init__"],  # not the interface's: the base's own arguments
        __module__=base.__module__,
    )
    name = f"{base.__name__}[{interface.__name__}]"
    return type(interface)(name, (base, interface), namespace)
