"""Installing, upgrading, uninstalling and purging plugins (``manage.py plugins install``,
``uninstall``, ``purge``; the console's upload and actions; the API's endpoints).

* :mod:`.targets` - what may be installed (wheel, source folder, requirement) and uploads;
* :mod:`.pip` - pip in the site's own environment: a child process, timed out, one at a time;
* :mod:`.verify` - what pip installed, seen by this process, and judged by the trust policy;
* :mod:`.packages` - install and uninstall, each ending in a sync;
* :mod:`.purge` - deleting the rows of a plugin that is gone.

Installing and uninstalling need ``PLUGINS_INSTALL_ENABLED``; the console and the API also
need the ``stonks_plugins.install_plugin`` permission (they check it; the CLI is the
operator's own shell).
"""

from __future__ import annotations

from .packages import check_enabled, install, install_upload, uninstall
from .purge import purge
from .results import InstallError, InstallResult, PurgeResult, UninstallResult
from .targets import MAX_WHEEL_BYTES, wheel_filename

__all__ = [
    "MAX_WHEEL_BYTES",
    "InstallError",
    "InstallResult",
    "PurgeResult",
    "UninstallResult",
    "check_enabled",
    "install",
    "install_upload",
    "purge",
    "uninstall",
    "wheel_filename",
]
