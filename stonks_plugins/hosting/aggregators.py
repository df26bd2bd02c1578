"""Panels from every active aggregator plugin, each computed through its boundary: one
failing aggregator is reported and skipped."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stonks_overwatch.core.data import PortfolioEntry

from ..base import BaseAggregatorPlugin
from ..legacy.bridge import load_serving
from ..panels import Panel
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginPanels:
    plugin: str
    title: str
    panels: tuple[Panel, ...] = ()
    error: str = ""


def panels(portfolio: list[PortfolioEntry]) -> list[PluginPanels]:
    out: list[PluginPanels] = []
    for name, loaded in load_serving("aggregator"):
        instance = loaded.instance
        if not isinstance(instance, BaseAggregatorPlugin) or loaded.sandbox is None:
            continue
        try:
            result = loaded.sandbox.run(
                "aggregate", instance.aggregate, list(portfolio), timeout=None
            )
            valid = tuple(p for p in result if isinstance(p, Panel))
        except SandboxError as err:
            out.append(PluginPanels(name, instance.manifest.display_name, error=str(err)))
            continue
        out.append(PluginPanels(name, instance.manifest.display_name, valid))
    return out
