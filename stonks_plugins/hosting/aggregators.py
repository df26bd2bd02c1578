"""Panels from every active aggregator plugin, each computed on the plugin's lane within the
page's budget: one failing or slow aggregator shows its last panels (with their age) or its
error, and the others render."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stonks_overwatch.core.data import PortfolioEntry

from ..base import BaseAggregatorPlugin
from ..panels import Panel
from ..runtime import budget, lanes, lastgood
from ..runtime.serving import load_serving
from ..sandbox import SandboxError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginPanels:
    plugin: str
    title: str
    panels: tuple[Panel, ...] = ()
    error: str = ""
    as_of: str = ""
    """Set when the panels are an earlier result (the plugin missed the budget or failed)."""


def panels(portfolio: list[PortfolioEntry]) -> list[PluginPanels]:
    out: list[PluginPanels] = []
    for name, loaded in load_serving("aggregator"):
        instance = loaded.instance
        if not isinstance(instance, BaseAggregatorPlugin) or loaded.sandbox is None:
            continue
        title = instance.manifest.display_name
        try:
            result = lanes.run(
                name, loaded.sandbox, "aggregate", instance.aggregate, list(portfolio)
            )
            valid = tuple(p for p in result if isinstance(p, Panel))
        except SandboxError as err:
            earlier = lastgood.get(name, "aggregate")
            if earlier is None:
                out.append(PluginPanels(name, title, error=str(err)))
            else:
                noted = budget.note_stale(name, earlier.as_of, err.message)
                out.append(PluginPanels(name, title, earlier.value, as_of=noted.hhmm))
            continue
        lastgood.keep(name, "aggregate", valid)
        out.append(PluginPanels(name, title, valid))
    return out
