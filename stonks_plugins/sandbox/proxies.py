"""The objects ``PluginSandbox.wrap`` hands out for a plugin's service instances.

A proxy is an instance of a subclass of the wrapped class, generated once per class (and per
sandbox), so ``isinstance(proxy, PortfolioServiceInterface)`` holds. Every attribute is
forwarded to the instance: methods are looked up on it once and their fast-path wrapper
(:mod:`.codegen`) cached on the proxy; data attributes, properties and slots are read (and
set) on the instance each time; private (``_x``) attributes pass through unwrapped. A callable
that is a class (``config_class``...) is data, not a service method, and is not wrapped.

Not guarded: dunder methods (``__call__``, ``__iter__``, ``__len__``... run with the proxy as
``self``, which forwards attribute access, but are not counted), and a method the instance
replaces on itself after it was first called through the proxy (the cached wrapper still
calls the old one). When the class cannot be subclassed (a C-layout base, a metaclass or
``__init_subclass__`` that refuses) the proxy is a plain forwarding object and ``isinstance``
against the interface does not hold.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .boundary import PluginSandbox

logger = logging.getLogger("stonks_plugins.sandbox")

_TARGET: Final = "_sandbox__target"
_PREFIX: Final = "_sandbox__prefix"
_SANDBOX: Final = "_sandbox__box"
_RESERVED: Final = frozenset({_TARGET, _PREFIX, _SANDBOX})


def _wrappable(value: object) -> bool:
    return callable(value) and not isinstance(value, type)


def _method_like(attr: object) -> bool:
    """A class attribute that becomes a method on instances (a non-data descriptor)."""
    if isinstance(attr, (staticmethod, classmethod)):
        return True
    kind = type(attr)
    return (
        callable(attr)
        and not isinstance(attr, type)
        and hasattr(kind, "__get__")
        and not hasattr(kind, "__set__")
    )


def _shadowed(target: object, name: str) -> bool:
    """Does the instance hold ``name`` itself (it may change it: do not cache)?"""
    try:
        return name in object.__getattribute__(target, "__dict__")
    except AttributeError:
        return False


class SandboxedProxy:
    """Base of every service proxy: ``isinstance(x, SandboxedProxy)`` tells a wrapped one.

    Listed first in a generated proxy class's bases so that its attribute hooks win over the
    wrapped class's own.
    """

    __slots__ = ()
    __getattribute__ = object.__getattribute__

    def __getattr__(self, name: str) -> Any:
        # Reached only for names the proxy class does not mask: the instance's own attributes
        # (or everything, for the plain proxy).
        state = object.__getattribute__(self, "__dict__")
        if _TARGET not in state:
            raise AttributeError(name)
        target, prefix, box = state[_TARGET], state[_PREFIX], state[_SANDBOX]
        value = box.get_attribute(target, name, prefix)
        if name.startswith("_") or not _wrappable(value):
            return value
        wrapper = box.wrap_callable(value, f"{prefix}.{name}")
        if not _shadowed(target, name) and _method_like(
            inspect.getattr_static(type(target), name, None)
        ):
            state[name] = wrapper
        return wrapper

    def __setattr__(self, name: str, value: Any) -> None:
        state = object.__getattribute__(self, "__dict__")
        setattr(state[_TARGET], name, value)
        state.pop(name, None)  # a cached wrapper of the old value

    def __delattr__(self, name: str) -> None:
        state = object.__getattribute__(self, "__dict__")
        delattr(state[_TARGET], name)
        state.pop(name, None)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(object.__getattribute__(self, "__dict__")[_TARGET])))

    def __repr__(self) -> str:
        state = object.__getattribute__(self, "__dict__")
        target = state.get(_TARGET)
        return (
            f"<sandboxed {type(target).__qualname__} of plugin "
            f"'{state[_SANDBOX].plugin}' as '{state[_PREFIX]}'>"
        )


class _PlainProxy(SandboxedProxy):
    """The fallback when the wrapped class cannot be subclassed: forwarding only."""


class _LazyMethod:
    """Masks a method of the wrapped class: on first access, look it up on the instance,
    wrap it (public names) and cache the result in the proxy's ``__dict__``, which then wins
    over this non-data descriptor — later accesses are a plain dict hit."""

    __slots__ = ("base", "name", "public")

    def __init__(self, base: type, name: str) -> None:
        self.base = base
        self.name = name
        self.public = not name.startswith("_")

    def __get__(self, proxy: object, owner: type | None = None) -> Any:
        if proxy is None:
            return getattr(self.base, self.name)
        state = object.__getattribute__(proxy, "__dict__")
        target, prefix, box = state[_TARGET], state[_PREFIX], state[_SANDBOX]
        value = box.get_attribute(target, self.name, prefix)
        if self.public and _wrappable(value):
            value = box.wrap_callable(value, f"{prefix}.{self.name}")
        if not _shadowed(target, self.name):
            state[self.name] = value
        return value


class _Forward:
    """Masks a data attribute, property or slot of the wrapped class: read, set and delete
    it on the instance, every time (its value may change)."""

    __slots__ = ("base", "name", "public")

    def __init__(self, base: type, name: str) -> None:
        self.base = base
        self.name = name
        self.public = not name.startswith("_")

    def __get__(self, proxy: object, owner: type | None = None) -> Any:
        if proxy is None:
            return getattr(self.base, self.name)
        state = object.__getattribute__(proxy, "__dict__")
        value = state[_SANDBOX].get_attribute(state[_TARGET], self.name, state[_PREFIX])
        if self.public and _wrappable(value):
            return state[_SANDBOX].wrap_callable(value, f"{state[_PREFIX]}.{self.name}")
        return value

    def __set__(self, proxy: object, value: Any) -> None:
        setattr(object.__getattribute__(proxy, "__dict__")[_TARGET], self.name, value)

    def __delete__(self, proxy: object) -> None:
        delattr(object.__getattribute__(proxy, "__dict__")[_TARGET], self.name)


def _no_finalizer(self: object) -> None:
    """The wrapped class's ``__del__`` must not run on the proxy: it would close the
    instance's resources while the instance lives on."""


def proxy_class(cls: type) -> type:
    """A subclass of ``cls`` masking each of its non-dunder attributes with a forwarder."""
    # No __slots__ here: the proxy needs a __dict__ (its state and cached wrappers) even when
    # the wrapped class has none.
    namespace: dict[str, Any] = {"__module__": __name__}
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, attr in vars(klass).items():
            if name in namespace or name in _RESERVED:
                continue
            if name.startswith("__") and name.endswith("__"):
                continue
            namespace[name] = _LazyMethod(cls, name) if _method_like(attr) else _Forward(cls, name)
    if getattr(cls, "__del__", None) is not None:
        namespace["__del__"] = _no_finalizer
    name = f"Sandboxed{cls.__name__}"
    try:
        proxy_cls: type = type(cls)(name, (SandboxedProxy, cls), namespace)
    except Exception:
        logger.debug("cannot subclass %r; using a plain forwarding proxy", cls, exc_info=True)
        return _PlainProxy
    proxy_cls.__qualname__ = name
    return proxy_cls


def make_proxy(proxy_cls: type, instance: object, prefix: str, box: PluginSandbox) -> Any:
    """A proxy of ``instance`` (of ``proxy_cls``, or the plain one when that cannot be
    instantiated) whose calls go through ``box`` as ``prefix.<method>``."""
    proxy: Any
    try:
        proxy = object.__new__(proxy_cls)
    except TypeError:
        proxy = object.__new__(_PlainProxy)
    state = object.__getattribute__(proxy, "__dict__")
    state[_TARGET] = instance
    state[_PREFIX] = prefix
    state[_SANDBOX] = box
    return proxy
