"""Errors the legacy core raises or understands."""


class BrokerRegistryError(Exception):
    """A broker registration or lookup is invalid."""


class BrokerUnavailableError(Exception):
    """A broker's service could not run; consumers skip the broker and go on.

    Anything that wraps a broker (the plugin system does) raises a subclass of this so that
    aggregators can render the other brokers instead of failing the whole page.
    """

    def __init__(self, broker: str, message: str) -> None:
        super().__init__(f"broker '{broker}': {message}")
        self.broker = broker
