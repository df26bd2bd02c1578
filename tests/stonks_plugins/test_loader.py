"""The loader: plugin code is imported under a per-plugin prefix, so two plugins that both
ship ``broker/`` load side by side without touching sys.path; failures are import_error."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stonks_overwatch.core.interfaces import PortfolioServiceInterface
from stonks_overwatch.core.service_types import ServiceType
from stonks_plugins import loader
from stonks_plugins.discovery import Candidate, discover
from stonks_plugins.errors import PluginError, ReasonCode
from stonks_plugins.registry import plugin_registry
from tests.conftest import FIXTURES


@pytest.fixture
def corpus(tmp_path: Path) -> Iterator[dict[str, Candidate]]:
    """Copies of the fixture plugins, discovered; their modules are released afterwards."""
    for name in ("collide-one", "collide-two", "healthy-fixture", "import-error"):
        shutil.copytree(FIXTURES / name, tmp_path / name)
    found = discover([tmp_path], entry_points=False).by_name()
    yield found
    for cand in found.values():
        loader.release(cand)


def test_two_plugins_shipping_the_same_package_both_load(corpus: dict[str, Candidate]) -> None:
    path_before = list(sys.path)
    for cand in (corpus["collide-one"], corpus["collide-two"]):
        plugin_registry.register(cand)
    one = plugin_registry.load("collide-one").services[ServiceType.PORTFOLIO]
    two = plugin_registry.load("collide-two").services[ServiceType.PORTFOLIO]

    assert one is not two
    assert issubclass(one, PortfolioServiceInterface) and issubclass(two, PortfolioServiceInterface)
    assert [e.symbol for e in one().get_portfolio()] == ["COL1"]
    assert [e.symbol for e in two().get_portfolio()] == ["COL2"]
    # No folder went onto sys.path, and no bare 'broker' package appeared.
    assert sys.path == path_before
    assert "broker" not in sys.modules
    assert one.__module__ == "_stonks_plugin_pkgs.collide_one.broker.services"
    assert two.__module__ == "_stonks_plugin_pkgs.collide_two.broker.services"
    assert sys.modules["_stonks_plugin_pkgs.collide_one.broker.data"].POSITION[1] == "COL1"
    assert sys.modules["_stonks_plugin_pkgs.collide_two.broker.data"].POSITION[1] == "COL2"


def test_load_order_does_not_matter(corpus: dict[str, Candidate]) -> None:
    for cand in (corpus["collide-two"], corpus["collide-one"]):
        plugin_registry.register(cand)
    two = plugin_registry.load("collide-two").services[ServiceType.PORTFOLIO]
    one = plugin_registry.load("collide-one").services[ServiceType.PORTFOLIO]
    assert (one().get_portfolio()[0].symbol, two().get_portfolio()[0].symbol) == ("COL1", "COL2")


def test_loading_is_once_per_process(corpus: dict[str, Candidate]) -> None:
    plugin_registry.register(corpus["healthy-fixture"])
    first = plugin_registry.load("healthy-fixture")
    assert plugin_registry.load("healthy-fixture") is first
    assert set(plugin_registry.loaded()) == {"healthy-fixture"}


def test_import_error_is_reported_with_module_and_cause(corpus: dict[str, Candidate]) -> None:
    plugin_registry.register(corpus["import-error"])
    with pytest.raises(PluginError) as err:
        plugin_registry.load("import-error")
    assert err.value.code is ReasonCode.IMPORT_ERROR
    assert err.value.plugin == "import-error"
    assert "broken.services" in err.value.message
    assert "ModuleNotFoundError" in err.value.message
    assert "stonks_fixture_module_that_does_not_exist" in err.value.message
    # A half-imported plugin does not linger.
    assert not [m for m in sys.modules if m.startswith("_stonks_plugin_pkgs.import_error.")]
    assert "import-error" not in plugin_registry.loaded()


def test_missing_attribute_is_an_import_error(corpus: dict[str, Candidate]) -> None:
    with pytest.raises(PluginError) as err:
        loader.resolve(corpus["healthy-fixture"], "healthy.services.NoSuchService")
    assert err.value.code is ReasonCode.IMPORT_ERROR
    assert "has no attribute 'NoSuchService'" in err.value.message


def test_missing_module_is_an_import_error(corpus: dict[str, Candidate]) -> None:
    with pytest.raises(PluginError) as err:
        loader.resolve(corpus["healthy-fixture"], "healthy.nothing_here:Thing")
    assert err.value.code is ReasonCode.IMPORT_ERROR
    assert "healthy.nothing_here" in err.value.message


def test_resolve_accepts_colon_and_dotted_references(corpus: dict[str, Candidate]) -> None:
    cand = corpus["healthy-fixture"]
    a = loader.resolve(cand, "healthy.services:PortfolioService")
    b = loader.resolve(cand, "healthy.services.PortfolioService")
    assert a is b


def test_split_ref() -> None:
    assert loader.split_ref("pkg.mod:Obj.attr") == ("pkg.mod", "Obj.attr")
    assert loader.split_ref("pkg.mod.Obj") == ("pkg.mod", "Obj")


def test_package_prefix_is_a_valid_module_name() -> None:
    assert (
        loader.package_prefix("dup-broker@duplicate-b")
        == "_stonks_plugin_pkgs.dup_broker_X40duplicate_b"  # '@' escaped: no name shares it
    )
    assert loader.package_prefix("a.b-c").count(".") == 1


def test_service_that_does_not_implement_the_interface_is_refused(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "healthy-fixture", tmp_path / "healthy-fixture")
    (tmp_path / "healthy-fixture" / "healthy" / "services.py").write_text(
        "class PortfolioService:\n    pass\n"
    )
    cand = discover([tmp_path], entry_points=False).get("healthy-fixture")
    assert cand is not None
    plugin_registry.register(cand)
    with pytest.raises(PluginError) as err:
        plugin_registry.load("healthy-fixture")
    assert err.value.code is ReasonCode.IMPORT_ERROR
    assert "does not implement PortfolioServiceInterface" in err.value.message


def test_release_forgets_modules_so_edited_code_is_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "healthy-fixture"
    shutil.copytree(FIXTURES / "healthy-fixture", folder)
    cand = discover([tmp_path], entry_points=False).get("healthy-fixture")
    assert cand is not None
    plugin_registry.register(cand)
    svc = plugin_registry.load("healthy-fixture").services[ServiceType.PORTFOLIO]
    assert svc().get_portfolio()[0].symbol == "HLTH"

    assert plugin_registry.unload("healthy-fixture")
    assert not [m for m in sys.modules if m.startswith("_stonks_plugin_pkgs.healthy_fixture")]
    (folder / "healthy" / "data.py").write_text('POSITION = ("Edited", "EDIT", 1.0, 2.0)\n')
    svc = plugin_registry.load("healthy-fixture").services[ServiceType.PORTFOLIO]
    assert svc().get_portfolio()[0].symbol == "EDIT"


def test_plugin_folder_without_init_is_mounted_as_a_namespace(corpus: dict[str, Candidate]) -> None:
    cand = corpus["healthy-fixture"]
    assert not (cand.root / "__init__.py").exists()  # type: ignore[operator]
    prefix = loader.mount(cand)
    assert list(sys.modules[prefix].__path__) == [str(cand.root)]
    assert loader.mount(cand) == prefix  # idempotent


def test_unregistered_plugin_cannot_be_loaded() -> None:
    with pytest.raises(PluginError) as err:
        plugin_registry.load("never-registered")
    assert err.value.code is ReasonCode.IMPORT_ERROR


def test_remounting_from_another_folder_serves_the_new_code(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for base, symbol in ((first, "HLTH"), (second, "MOVD")):
        shutil.copytree(FIXTURES / "healthy-fixture", base / "healthy-fixture")
        (base / "healthy-fixture" / "healthy" / "data.py").write_text(
            f'POSITION = ("Moved", "{symbol}", 1.0, 2.0)\n'
        )
    old = discover([first], entry_points=False).get("healthy-fixture")
    new = discover([second], entry_points=False).get("healthy-fixture")
    assert old is not None and new is not None
    try:
        ref = "healthy.services.PortfolioService"
        assert loader.resolve(old, ref)().get_portfolio()[0].symbol == "HLTH"
        assert loader.resolve(new, ref)().get_portfolio()[0].symbol == "MOVD"
    finally:
        loader.release(new)


def test_a_plugins_modules_are_released_while_another_thread_imports() -> None:
    """A reload or a reset releases a plugin's modules while a load goes on in the
    background, importing others: the release must not trip over ``sys.modules`` growing."""
    import threading
    import time
    import types

    from stonks_plugins.discovery.candidate import Source

    name = "race-release"
    prefix = loader.package_prefix(name)
    cand = Candidate.quick(name, Source.DIRECTORY, "/nowhere", None, None, None, "")
    stop = threading.Event()
    added: list[str] = []

    def import_meanwhile() -> None:
        while not stop.is_set():
            module = f"_stonks_release_race_{len(added)}"
            sys.modules[module] = types.ModuleType(module)
            added.append(module)
            time.sleep(0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    importer = threading.Thread(target=import_meanwhile)
    importer.start()
    try:
        for _ in range(500):
            sys.modules[f"{prefix}.services"] = types.ModuleType(f"{prefix}.services")
            assert loader.release(cand) == [f"{prefix}.services"]
            assert f"{prefix}.services" not in sys.modules
    finally:
        stop.set()
        importer.join()
        sys.setswitchinterval(interval)
        for module in added:
            sys.modules.pop(module, None)
