"""Settings of the DeGiro plugin."""

from __future__ import annotations

from dataclasses import dataclass

from stonks_plugins.sdk import BaseConfig


@dataclass
class DegiroConfig(BaseConfig):
    """DeGiro account settings.

    The credentials are kept for the API-backed version of this plugin; this version only reads
    the export files in ``import_folder``. An empty ``import_folder`` means the sample exports
    shipped with the plugin, so a fresh install shows data without any setup.
    """

    username: str = ""
    password: str = ""
    int_account: int = 0
    use_2fa: bool = False
    session_timeout: int = 3600
    import_folder: str = ""
