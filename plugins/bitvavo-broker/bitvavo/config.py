"""Settings of the Bitvavo plugin."""

from __future__ import annotations

from dataclasses import dataclass

from stonks_plugins.sdk import BaseConfig


@dataclass
class BitvavoConfig(BaseConfig):
    """Bitvavo account settings.

    The API key and secret are kept for the API-backed version of this plugin; this version
    reads the transaction history exports in ``import_folder``. An empty ``import_folder``
    means the sample export shipped with the plugin.
    """

    api_key: str = ""
    api_secret: str = ""
    import_folder: str = ""
