"""What the kit's test families share: the plugin under test and the helpers that record a
plugin fault as a failed check instead of raising.

:class:`PluginUnderTest` re-reads the plugin on every call (its files may change between two
tests) and loads it in a registry of its own, so the kit never touches the host's.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stonks_overwatch.core.service_types import ServiceType

from .. import loader
from ..config.schema import SchemaError, config_schema
from ..config.validation import fill_defaults
from ..discovery.candidate import Candidate, Problem, Source
from ..discovery.catalog import apply_compatibility
from ..discovery.directories import scan_directory_plugin
from ..discovery.manifest_bytes import candidate_from_bytes
from ..errors import PluginError, ReasonCode
from ..manifest.validation import MANIFEST_FILENAME
from ..plugin_files import MANIFEST_SETTING, manifest_limit, read_plugin_file
from ..registry import LoadedPlugin, PluginRegistry
from ..sandbox import PluginSandbox, SandboxError
from ..versioning import default_checker
from .results import TestResult
from .service_checks import FAULTS, fault_message

Target = str | os.PathLike[str] | Candidate | LoadedPlugin

CONFIG_SECTIONS = ("credentials", "settings")
"""Sections of a config the config system flattens for the config class."""

_INVALID = (ReasonCode.MANIFEST_UNREADABLE, ReasonCode.MANIFEST_INVALID)
_MANIFEST_HINT = (
    " — fix plugin_manifest.json (run 'manage.py plugins validate PATH' for every error "
    "with its JSON path)"
)


class _Failed:
    def __repr__(self) -> str:
        return "<failed>"


FAILED: Any = _Failed()
"""Returned instead of a value when the step failed and its check is already recorded."""


class PluginUnderTest:
    """The plugin a kit run is about, with the config and time limits it runs under."""

    def __init__(
        self,
        target: Target,
        *,
        config: Mapping[str, Any] | None = None,
        timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        if isinstance(target, LoadedPlugin):
            target = target.candidate
        self.target = target
        self.config_overrides: dict[str, Any] = dict(config or {})
        self.timeouts: dict[str, float | None] = dict(timeouts or {})

    def candidate(self) -> Candidate:
        """The plugin as discovery sees it, compatibility verdict included (read afresh on
        every call: the files may have changed between two tests)."""
        target = self.target
        if isinstance(target, Candidate):
            return apply_compatibility(target)
        path = Path(target).expanduser().resolve()
        if path.is_dir() or path.name == MANIFEST_FILENAME:
            folder = path if path.is_dir() else path.parent
            if not folder.exists():
                return missing_candidate(path)
            return apply_compatibility(scan_directory_plugin(folder))
        if not path.exists():
            return missing_candidate(path)
        return apply_compatibility(candidate_from_file(path))

    @property
    def name(self) -> str:
        return self.candidate().name

    @property
    def location(self) -> str:
        return self.candidate().location

    def safe_name(self) -> str:
        """The name for a result, even when the target cannot be read."""
        try:
            return self.name
        except Exception:
            return str(self.target)

    def config_data(self, cand: Candidate | None = None) -> dict[str, Any]:
        """The settings services are built with: the schema's defaults (flattened as the
        config system hands them to the config class), then ``config``."""
        cand = cand if cand is not None else self.candidate()
        data: dict[str, Any] = {}
        if cand.manifest is not None:
            with contextlib.suppress(SchemaError):  # reported by the configuration test
                data.update(schema_defaults(config_schema(cand.manifest, cand.root)))
        data.update(self.config_overrides)
        return data

    def usable(self, result: TestResult, report_ok: bool = False) -> Candidate | None:
        """The candidate when its manifest is valid and compatible; else record why not."""
        cand = self.candidate()
        problem = cand.problem
        if cand.manifest is None or (problem is not None and problem.code in _INVALID):
            result.fail("manifest.valid", _problem_text(problem, cand) + _MANIFEST_HINT)
            return None
        if report_ok:
            result.ok("manifest.valid", f"{cand.name} {cand.manifest.version} ({cand.location})")
        if problem is not None:
            if problem.code is ReasonCode.INCOMPATIBLE_API:  # name the interfaces at fault
                check_declared_interfaces(result, cand)
            result.fail("manifest.compatible", f"{problem.code.value}: {problem.message}")
            return None
        if report_ok:
            result.ok("manifest.compatible", "runs on this core")
        return cand

    def registry(self) -> PluginRegistry:
        """A registry of the kit's own, wired as the host wires its one."""
        registry = PluginRegistry()
        registry.hooks.timeouts = dict(self.timeouts)
        # The plugin object gets the kit's config before initialize(), as in the host.
        registry.hooks.config_provider = self._provide_config
        return registry

    def _provide_config(self, name: str) -> dict[str, Any]:
        return self.config_data()

    @contextmanager
    def loaded(self, result: TestResult, cand: Candidate) -> Iterator[LoadedPlugin | None]:
        """The plugin loaded in a registry of its own; unloaded (and released) on exit."""
        registry = self.registry()
        registry.build_config = False  # the configuration checks build it, step by step
        registry.register(cand)
        try:
            try:
                loaded = registry.load(cand.name)
            except PluginError as err:
                result.fail("load", f"{err.code.value}: {err.message}")
                yield None
                return
            result.ok("load", "imported and initialised through the registry and sandbox")
            yield loaded
        finally:
            registry.clear()

    def build_config(self, result: TestResult, loaded: LoadedPlugin) -> Any:
        """The plugin's config object built from :meth:`config_data`, or ``FAILED``."""
        assert loaded.sandbox is not None
        data = self.config_data(loaded.candidate)
        cls = loaded.config_class
        if not callable(getattr(cls, "from_dict", None)):
            result.fail("config.build", f"config class {kind_of(cls)} has no from_dict()")
            return FAILED
        return build(result, "config.build", loaded.sandbox, cls, data)

    def create_service(
        self, result: TestResult, name: str, loaded: LoadedPlugin, stype: ServiceType, config: Any
    ) -> Any:
        """One service built as the host builds it, or ``FAILED``."""
        try:
            return loaded.create_service(stype, config=config)
        except FAULTS as err:
            result.fail(
                name,
                f"building the {stype.value} service with config= raised {fault_message(err)}; "
                "its __init__ must accept (config=None, **kwargs) like BrokerServiceInterface",
            )
            return FAILED


def check_declared_interfaces(result: TestResult, cand: Candidate) -> None:
    """The API versions the manifest asks for, against what this core serves."""
    assert cand.manifest is not None
    issues = default_checker.check(cand.manifest.api.interfaces)
    if issues:
        result.fail("api.interfaces", "; ".join(i.message for i in issues))
    elif cand.manifest.api.interfaces:
        result.ok("api.interfaces", ", ".join(cand.manifest.api.interfaces))


def schema_defaults(schema: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults a config schema fills in, flattened the way the config system hands
    them to a config class (the seed's ``credentials``/``settings`` sections merged into the
    top level; see :mod:`stonks_plugins.config.system`)."""
    if not isinstance(schema, dict):
        return {}
    filled = fill_defaults(schema, {})
    if not isinstance(filled, dict):
        return {}
    flat = {k: v for k, v in filled.items() if k not in CONFIG_SECTIONS}
    for section in CONFIG_SECTIONS:
        if isinstance(filled.get(section), dict):
            flat.update(filled[section])
    return flat


def missing_candidate(path: Path) -> Candidate:
    return Candidate(
        path.name,
        Source.DIRECTORY,
        str(path),
        path if path.is_dir() else path.parent,
        None,
        None,
        "",
        Problem(ReasonCode.MANIFEST_UNREADABLE, f"{path}: no such plugin folder or manifest"),
    )


def candidate_from_file(path: Path) -> Candidate:
    """A manifest under another file name than plugin_manifest.json, read as discovery
    reads one (the same verdict and messages)."""
    data: bytes | OSError
    try:
        data = read_plugin_file(path, manifest_limit(), setting=MANIFEST_SETTING)
    except OSError as exc:
        data = exc
    folder = path.parent
    return candidate_from_bytes(
        data, str(path), Source.DIRECTORY, str(folder), folder, (), folder.name
    )


def _problem_text(problem: Problem | None, cand: Candidate) -> str:
    if problem is None:
        return f"{cand.location}: no manifest"
    return f"{problem.code.value}: {problem.message}"


def kind_of(value: Any) -> str:
    """What ``value`` is, for a message that says what was expected instead."""
    if isinstance(value, type):
        return f"the class {value.__module__}.{value.__qualname__}"
    return f"a {type(value).__name__} ({value!r:.60})"


def resolve(result: TestResult, name: str, box: PluginSandbox, cand: Candidate, ref: str) -> Any:
    """The object a manifest's dotted path names, imported in ``box``; or ``FAILED``."""
    try:
        return box.run("import", loader.resolve, cand, ref)
    except SandboxError as err:
        result.fail(name, f"{err.code.value}: {err.message}")
        return FAILED


def build(
    result: TestResult,
    name: str,
    box: PluginSandbox,
    cls: Any,
    data: dict[str, Any],
) -> Any:
    """``cls.from_dict(data)`` run in ``box``, checked to be a ``cls``; or ``FAILED``."""
    try:
        config = box.run("config.from_dict", cls.from_dict, data, timeout=None)
    except SandboxError as err:
        result.fail(name, f"{kind_of(cls)}.from_dict({data!r}) raised {err.message}")
        return FAILED
    if isinstance(cls, type) and not isinstance(config, cls):
        result.fail(name, f"from_dict({data!r}) returned {kind_of(config)}, not a {cls.__name__}")
        return FAILED
    return config


@contextmanager
def timed(result: TestResult) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        result.duration_s = time.perf_counter() - start
