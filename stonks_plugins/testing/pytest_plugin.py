"""The test kit as a pytest plugin (entry point ``pytest11``:
``stonks_plugins.testing.pytest_plugin``). Inert unless asked: it adds two options, an ini
key, a fixture and a marker, and does nothing else — the kit itself is imported only when a
test uses it.

- fixture ``plugin_suite``: a :class:`~stonks_plugins.testing.PluginTestSuite` for the plugin
  under test, found from (first match wins) the ``stonks_plugin_kit(path=...)`` marker,
  ``--stonks-plugin PATH``, the ``stonks_plugin_dir`` ini key, the rootdir when it holds a
  ``plugin_manifest.json``, or the nearest folder above the test file that holds one;
- ``pytest --stonks-plugin-kit PATH`` (repeatable): adds the standard tests (interfaces,
  lifecycle, configuration) for the plugin at PATH to the run; select only them with
  ``-m stonks_plugin_kit``;
- marker ``stonks_plugin_kit`` on a test class: the class becomes the standard tests::

      @pytest.mark.stonks_plugin_kit  # or (path="..", cycles=3, benchmark=True, config={...})
      class TestKit:
          pass
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import StonksPluginsError

if TYPE_CHECKING:
    from .suite import PluginTestSuite

MARKER = "stonks_plugin_kit"
INI_KEY = "stonks_plugin_dir"
MANIFEST = "plugin_manifest.json"
TESTS = ("interfaces", "lifecycle", "configuration")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stonks-plugins", "Stonks Overwatch plugin test kit")
    group.addoption(
        "--stonks-plugin",
        metavar="PATH",
        default=None,
        help="plugin folder (or its plugin_manifest.json) the plugin_suite fixture tests",
    )
    group.addoption(
        "--stonks-plugin-kit",
        metavar="PATH",
        action="append",
        default=[],
        help="run the kit's standard tests against the plugin at PATH (repeatable)",
    )
    parser.addini(
        INI_KEY, "plugin folder the plugin_suite fixture tests (relative to the ini file)"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path=None, cycles=3, benchmark=False, config=None): on a test class, "
        "generate the plugin test kit's standard tests; on kit tests, selects them (-m)",
    )


# -- finding the plugin under test --------------------------------------------------------------


def _has_manifest(path: Path) -> bool:
    return (path / MANIFEST).is_file() or (path.name == MANIFEST and path.is_file())


def find_plugin(config: pytest.Config, start: Path | None = None) -> Path | None:
    """The plugin folder to test: option, ini key, rootdir, then upwards from ``start``."""
    option = config.getoption("stonks_plugin", None)
    if option:
        return (config.invocation_params.dir / option).resolve()
    ini = config.getini(INI_KEY)
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return (base / str(ini)).resolve()
    if _has_manifest(config.rootpath):
        return config.rootpath
    here = start.resolve() if start is not None else None
    while here is not None:
        if _has_manifest(here):
            return here
        here = here.parent if here.parent != here else None
    return None


def _options(mark: pytest.Mark | None) -> dict[str, Any]:
    return dict(mark.kwargs) if mark is not None else {}


def _marker_path(mark: pytest.Mark | None, node_path: Path) -> Path | None:
    kwargs = _options(mark)
    path = kwargs.get("path") or (mark.args[0] if mark is not None and mark.args else None)
    if path is None:
        return None
    base = node_path.parent if node_path.is_file() else node_path
    return (base / str(path)).resolve()


_NOT_FOUND = (
    "no plugin to test: pass --stonks-plugin PATH, set stonks_plugin_dir in the ini file, give "
    "the marker a path (stonks_plugin_kit(path=...)), or put the tests inside the plugin folder "
    "(next to plugin_manifest.json)"
)


@pytest.fixture
def plugin_suite(request: pytest.FixtureRequest) -> PluginTestSuite:
    """The kit for the plugin under test: ``plugin_suite.assert_all()``."""
    from .suite import PluginTestSuite

    mark = request.node.get_closest_marker(MARKER)
    path = _marker_path(mark, Path(request.node.path)) or find_plugin(
        request.config, Path(request.node.path).parent
    )
    if path is None:
        pytest.fail(_NOT_FOUND, pytrace=False)
    kwargs = _options(mark)
    return PluginTestSuite(path, config=kwargs.get("config"), timeouts=kwargs.get("timeouts"))


# -- generated tests -----------------------------------------------------------------------------


class KitFailure(StonksPluginsError, AssertionError):
    """A standard test failed; ``str()`` is the kit's report of the failed checks."""


class KitItem(pytest.Item):
    """One standard test of the kit for one plugin."""

    def __init__(self, *, plugin: Path, test: str, options: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.plugin = plugin
        self.test = test
        self.options = options
        self.add_marker(MARKER)

    def runtest(self) -> None:
        from .suite import PluginTestSuite, failure_report

        suite = PluginTestSuite(
            self.plugin, config=self.options.get("config"), timeouts=self.options.get("timeouts")
        )
        if self.test == "lifecycle":
            result = suite.run("lifecycle", cycles=int(self.options.get("cycles", 3)))
        elif self.test == "benchmark":
            result = suite.run("benchmark", calls=int(self.options.get("calls", 100)))
            self.add_report_section("call", "benchmark", result.report())
        else:
            result = suite.run(self.test)
        if not result.passed:
            raise KitFailure(failure_report(suite.name, suite.location, [result]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, KitFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"stonks plugin kit: {self.test} [{self.plugin.name}]"


def _items(parent: pytest.Collector, plugin: Path, options: dict[str, Any]) -> list[KitItem]:
    tests = [*TESTS, *(["benchmark"] if options.get("benchmark") else [])]
    return [
        KitItem.from_parent(parent, name=t, plugin=plugin, test=t, options=options) for t in tests
    ]


class KitCollector(pytest.Collector):
    """A marked test class, replaced by the kit's standard tests."""

    def __init__(self, *, plugin: Path | None, options: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.plugin = plugin
        self.options = options

    def collect(self) -> list[KitItem]:
        if self.plugin is None:
            raise pytest.UsageError(f"{self.nodeid}: {_NOT_FOUND}")
        return _items(self, self.plugin, self.options)


class KitFile(pytest.File):
    """``--stonks-plugin-kit PATH``: the plugin's manifest, holding the standard tests."""

    def __init__(self, *, plugin: Path, options: dict[str, Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.plugin = plugin
        self.options = options

    def collect(self) -> list[KitItem]:
        return _items(self, self.plugin, self.options)


def _kit_mark(obj: object) -> pytest.Mark | None:
    marks = getattr(obj, "pytestmark", None)
    if not isinstance(marks, list):
        return None
    return next((m for m in marks if getattr(m, "name", None) == MARKER), None)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    if not isinstance(obj, type):
        return None
    mark = _kit_mark(obj)
    if mark is None:
        return None
    plugin = _marker_path(mark, Path(collector.path)) or find_plugin(
        collector.config, Path(collector.path).parent
    )
    return KitCollector.from_parent(collector, name=name, plugin=plugin, options=_options(mark))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    paths = config.getoption("stonks_plugin_kit", None) or []
    for raw in paths:
        path = (config.invocation_params.dir / raw).resolve()
        folder = path.parent if path.name == MANIFEST else path
        if not (folder / MANIFEST).is_file():
            raise pytest.UsageError(f"--stonks-plugin-kit {raw}: no {MANIFEST} in {folder}")
        manifest = folder / MANIFEST
        try:
            name = manifest.relative_to(config.rootpath).as_posix()
        except ValueError:
            name = f"{folder.name}/{MANIFEST}"
        node = KitFile.from_parent(session, path=manifest, name=name, plugin=folder, options={})
        items.extend(node.collect())
