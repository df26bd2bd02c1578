"""Plugin states and the transitions between them."""

from .states import TRANSITIONS, PluginState, check_transition

__all__ = ["TRANSITIONS", "PluginState", "check_transition"]
