"""The export toolkit of the SDK: what a broker plugin that reads export files needs.

``from stonks_plugins.sdk.exports import read_csv, parse_rows, ImportReport, ...``; each name
is importable from :mod:`stonks_plugins.sdk` itself as well (the bundled brokers do), but is
listed here rather than in the SDK's short ``__all__``. The toolkit lives in
:mod:`stonks_plugins.exports` (one module per concern, nothing of Django or the host); this
module is its public face, so the implementation may move. See ``docs/exports.md``.
"""

from ..exports import *  # noqa: F403 - the whole toolkit, as its __all__ lists it
from ..exports import __all__ as __all__
