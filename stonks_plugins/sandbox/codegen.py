"""The fast path's wrappers, generated with each wrapped method's own signature.

A wrapper taking ``*args, **kwargs`` pays for packing a tuple and a dict and unpacking them
again on every call - more than all the rest of the boundary (``benchmarks/README.md``). So
each wrapper is generated as dataclasses generate ``__init__``: ``def get(a, key=<the same
default>)`` calling ``func(a, key)``. The source depends only on the signature's shape
(parameter names, kinds and how many defaults), so it is compiled once per shape and cached;
the defaults themselves are passed in (the very same objects, so sentinel defaults keep
working). Anything whose signature cannot be read, or that uses the template's own ``_sbx_``
names, gets the generic ``*args, **kwargs`` shape. The body is the same for every shape.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any, TypeVar

from .circuit import CircuitBreaker
from .metrics import CallStats

T = TypeVar("T")

_TEMPLATE = """\
def _sbx_factory(_sbx_func, _sbx_op, _sbx_stats, _sbx_breaker, _sbx_slow, _sbx_failed,
                 _sbx_clock, _sbx_error, _sbx_defaults):
    {unpack}
    def {name}({params}):
        if not _sbx_breaker.clean:
            return _sbx_slow(lambda: _sbx_func({args}), _sbx_op, _sbx_stats)
        _sbx_n = _sbx_stats.calls = _sbx_stats.calls + 1
        if _sbx_n & _sbx_stats.mask:
            try:
                return _sbx_func({args})
            except _sbx_error:
                _sbx_stats.errors += 1
                raise
            except (Exception, SystemExit) as _sbx_exc:
                raise _sbx_failed(_sbx_exc, _sbx_op, _sbx_stats) from _sbx_exc
        _sbx_start = _sbx_clock()
        try:
            _sbx_result = _sbx_func({args})
        except _sbx_error:
            _sbx_stats.errors += 1
            raise
        except (Exception, SystemExit) as _sbx_exc:
            _sbx_stats.observe(_sbx_clock() - _sbx_start)
            raise _sbx_failed(_sbx_exc, _sbx_op, _sbx_stats) from _sbx_exc
        _sbx_stats.observe(_sbx_clock() - _sbx_start)
        return _sbx_result
    return {name}
"""
_GENERIC = ("*_sbx_args, **_sbx_kwargs", "*_sbx_args, **_sbx_kwargs", 0)
_P = inspect.Parameter


def shape(func: Callable[..., Any]) -> tuple[tuple[str, str, int], tuple[Any, ...]]:
    """``((def params, call args, number of defaults), defaults)`` for ``func``.

    The signature is read without following ``__wrapped__``: a decorated method is called the
    way its outer wrapper says.
    """
    try:
        parameters = list(inspect.signature(func, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return _GENERIC, ()
    if any(p.name.startswith("_sbx_") for p in parameters):
        return _GENERIC, ()
    params: list[str] = []
    args: list[str] = []
    defaults: list[Any] = []
    star_done = False
    for i, p in enumerate(parameters):
        text = p.name
        if p.default is not _P.empty:
            text = f"{p.name}=_sbx_d{len(defaults)}"
            defaults.append(p.default)
        if p.kind is _P.VAR_POSITIONAL:
            params.append(f"*{p.name}")
            args.append(f"*{p.name}")
            star_done = True
        elif p.kind is _P.VAR_KEYWORD:
            params.append(f"**{p.name}")
            args.append(f"**{p.name}")
        elif p.kind is _P.KEYWORD_ONLY:
            if not star_done:
                params.append("*")
                star_done = True
            params.append(text)
            args.append(f"{p.name}={p.name}")
        else:
            params.append(text)
            args.append(p.name)
            nxt = parameters[i + 1].kind if i + 1 < len(parameters) else None
            if p.kind is _P.POSITIONAL_ONLY and nxt is not _P.POSITIONAL_ONLY:
                params.append("/")
    return (", ".join(params), ", ".join(args), len(defaults)), tuple(defaults)


@functools.lru_cache(maxsize=256)
def _compile_factory(params: str, args: str, n_defaults: int) -> Callable[..., Any]:
    names = [f"_sbx_d{i}" for i in range(n_defaults)]
    unpack = f"{', '.join(names)}, = _sbx_defaults" if names else "pass"
    source = _TEMPLATE.format(unpack=unpack, name="call", params=params, args=args)
    namespace: dict[str, Any] = {}
    exec(compile(source, "<sandbox fast path>", "exec"), namespace)
    factory: Callable[..., Any] = namespace["_sbx_factory"]
    return factory


def _factory_for(func: Callable[..., Any]) -> tuple[Callable[..., Any], str, tuple[Any, ...]]:
    form, defaults = shape(func)
    name = getattr(func, "__name__", "call")
    if not isinstance(name, str) or not name.isidentifier():
        name = "call"
    try:
        factory = _compile_factory(*form)
    except SyntaxError:  # a __signature__ no def can have: fall back to the generic shape
        factory, defaults = _compile_factory(*_GENERIC), ()
    return factory, name, defaults


def fast_wrapper(
    func: Callable[..., T],
    operation: str,
    *,
    stats: CallStats,
    breaker: CircuitBreaker,
    slow: Callable[[Callable[[], T], str, CallStats], T],
    failed: Callable[[BaseException, str, CallStats], BaseException],
    error: type[BaseException],
) -> Callable[..., T]:
    """``func`` counted as ``operation``: while ``breaker`` is clean, a call counts itself in
    ``stats`` (timed one call in ``stats.mask + 1``), lets ``error`` (a nested boundary's)
    through and raises ``failed(exc, operation, stats)`` for any other failure; otherwise
    ``slow(thunk, operation, stats)`` runs it."""
    factory, name, defaults = _factory_for(func)
    wrapper: Callable[..., T] = factory(
        func, operation, stats, breaker, slow, failed, perf_counter_ns, error, defaults
    )
    with contextlib.suppress(AttributeError, TypeError):  # an odd callable: works anyway
        functools.update_wrapper(wrapper, func)
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        # Argument errors then read like a direct call's ("S.get(): missing 'a'").
        qualname = getattr(func, "__qualname__", name)
        wrapper.__code__ = wrapper.__code__.replace(co_name=name, co_qualname=qualname)
    return wrapper
