"""The kit's ``configuration`` test: the plugin's config class against its manifest — it
builds from nothing and from the schema's defaults, takes every declared setting, and
round-trips through ``to_dict``.

``from_dict`` drops unknown keys, so a setting the class lacks would be ignored silently in
production; these checks are where an author hears of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stonks_overwatch.core.config import BaseConfig

from .. import loader
from ..config.schema import SchemaError, config_schema
from ..discovery.candidate import Candidate
from ..registry import LoadedPlugin
from ..sandbox import PluginSandbox, SandboxError
from .results import TestResult
from .support import FAILED, PluginUnderTest, build, kind_of, resolve, schema_defaults, timed

SchemaHook = Callable[[TestResult, Candidate, LoadedPlugin, dict[str, Any] | None], None]
"""``PluginTestSuite.check_config_schema``: the detailed checks of the schema itself."""

_SAMPLE_STR = "stonks-kit-sample"


def check_configuration(kit: PluginUnderTest, schema_hook: SchemaHook) -> TestResult:
    result = TestResult("configuration", kit.safe_name())
    with timed(result):
        cand = kit.usable(result)
        if cand is None:
            return result
        schema = _schema(result, cand)
        with kit.loaded(result, cand) as loaded:
            if loaded is None:
                return result
            if loaded.host is None:
                assert loaded.sandbox is not None
                _check_config(result, cand, loaded.sandbox, loaded.config_class, schema)
            else:
                _check_isolated_config(result, cand, schema, kit.timeouts)
            schema_hook(result, cand, loaded, schema)
    return result


def _schema(result: TestResult, cand: Candidate) -> dict[str, Any] | None:
    """The plugin's config schema as the config system reads it (inline, a file next to the
    manifest, or generated from the seed's credentials/settings lists)."""
    assert cand.manifest is not None
    declared = cand.manifest.configuration.schema
    try:
        schema = config_schema(cand.manifest, cand.root)
    except SchemaError as err:
        result.fail("config.schema", f"{err} (the path is relative to the manifest)")
        return None
    if declared is not None:
        where = "inline in the manifest" if isinstance(declared, dict) else f"from {declared}"
        result.ok("config.schema", where)
    return schema


def _check_isolated_config(
    result: TestResult,
    cand: Candidate,
    schema: dict[str, Any] | None,
    timeouts: dict[str, float | None],
) -> None:
    """A process-isolated plugin's config class lives in its child; the kit imports just
    that class here (keep config modules free of side effects)."""
    assert cand.manifest is not None
    ref = cand.manifest.configuration.config_class or cand.manifest.entry_points.config
    box = PluginSandbox(cand.name, timeouts=timeouts)
    try:
        cls = resolve(result, "config.class", box, cand, ref) if ref else BaseConfig
        if cls is not FAILED:
            _check_config(result, cand, box, cls, schema)
    finally:
        box.close(join_timeout=0.5)
        loader.release(cand)


def _check_config(
    result: TestResult,
    cand: Candidate,
    box: PluginSandbox,
    cls: Any,
    schema: dict[str, Any] | None,
) -> None:
    assert cand.manifest is not None
    if not (isinstance(cls, type) and issubclass(cls, BaseConfig)):
        result.fail(
            "config.class",
            f"the config class is {kind_of(cls)}; make it a dataclass subclassing "
            "stonks_plugins.sdk.BaseConfig",
        )
        return
    result.ok("config.class", f"{cls.__qualname__}")
    refs = [
        r
        for r in (cand.manifest.configuration.config_class, cand.manifest.entry_points.config)
        if r
    ]
    if len(refs) == 2:
        other = resolve(result, "config.refs", box, cand, refs[1])
        if other is not FAILED and other is not cls:
            result.fail(
                "config.refs",
                f"configuration.config_class '{refs[0]}' and entry_points.config "
                f"'{refs[1]}' name different classes; name the same one (or drop one)",
            )
        elif other is not FAILED:
            result.ok("config.refs", "configuration.config_class and entry_points.config agree")

    empty = build(result, "config.empty", box, cls, {})
    if empty is FAILED:
        return
    result.ok("config.empty", "from_dict({}) builds the defaults")
    defaults = schema_defaults(schema)
    if defaults:
        _check_schema_defaults(result, box, cls, empty, defaults)
    _check_declared_settings(result, box, cand, cls, empty)
    if hasattr(empty, "to_dict"):
        _check_round_trip(result, box, cls, empty)


def _check_round_trip(result: TestResult, box: PluginSandbox, cls: Any, empty: Any) -> None:
    try:
        again = box.run("config.round_trip", lambda: cls.from_dict(empty.to_dict()), timeout=None)
    except SandboxError as err:
        result.fail("config.round_trip", f"from_dict(to_dict()) raised {err.message}")
        return
    if again == empty:
        result.ok("config.round_trip", "from_dict(to_dict()) gives the same config")
    else:
        result.fail(
            "config.round_trip",
            f"from_dict(to_dict()) gives {again!r}, not {empty!r}: to_dict() and "
            "from_dict() must agree on the keys",
        )


def _check_schema_defaults(
    result: TestResult,
    box: PluginSandbox,
    cls: type,
    empty: Any,
    defaults: dict[str, Any],
) -> None:
    built = build(result, "config.schema_defaults", box, cls, defaults)
    if built is FAILED:
        return
    disagree = [
        f"'{k}' defaults to {v!r} in the schema but {getattr(empty, k, '<missing>')!r} in "
        f"{cls.__name__}"
        for k, v in defaults.items()
        if getattr(empty, k, FAILED) != v
    ]
    if disagree:
        result.fail(
            "config.schema_defaults",
            "; ".join(disagree) + ": make the schema's defaults and the class's agree",
        )
    else:
        result.ok("config.schema_defaults", f"schema defaults for {', '.join(defaults)}")


def _check_declared_settings(
    result: TestResult, box: PluginSandbox, cand: Candidate, cls: type, empty: Any
) -> None:
    assert cand.manifest is not None
    conf = cand.manifest.configuration
    declared = [*conf.required_credentials, *conf.optional_settings]
    if not declared:
        return
    missing = [k for k in declared if not hasattr(empty, k)]
    if missing:
        result.fail(
            "config.declared_settings",
            f"the manifest declares {', '.join(missing)} but {cls.__name__} has no such "
            "field (from_dict drops unknown keys, so the setting would be ignored): add "
            "the fields or fix configuration.required_credentials/optional_settings",
        )
        return
    sample = {k: _sample_value(getattr(empty, k)) for k in declared}
    built = build(result, "config.declared_settings", box, cls, sample)
    if built is FAILED:
        return
    ignored = [k for k, v in sample.items() if getattr(built, k, FAILED) != v]
    if ignored:
        result.fail(
            "config.declared_settings",
            f"from_dict({sample!r}) did not set {', '.join(ignored)}: from_dict must "
            "accept every declared setting",
        )
    else:
        result.ok("config.declared_settings", f"from_dict sets {', '.join(declared)}")


def _sample_value(default: Any) -> Any:
    """A value of the same type as ``default`` but different from it."""
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 7
    if isinstance(default, float):
        return default + 1.5
    if isinstance(default, str):
        return default + _SAMPLE_STR
    return default
