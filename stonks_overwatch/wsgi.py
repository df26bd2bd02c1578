import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
application = get_wsgi_application()

# A web server process: load its plugins in the background now and take requests once they
# are warm (the warm-up page itself waits at most a page's budget) - bounded either way.
from stonks_plugins.conf import plugin_settings  # noqa: E402
from stonks_plugins.runtime.background import ensure_started  # noqa: E402

ensure_started(ready_within=2 * float(plugin_settings.PAGE_BUDGET) + 1)

# What its first page would otherwise import and compile, a user waiting (warm.py).
from stonks_overwatch.warm import warm_page_path  # noqa: E402

warm_page_path()

# Everything the start made lives as long as the process: out of the collector's way, so an
# oldest-generation collection during a page walks only what came since (runtime.heap).
from stonks_plugins.runtime.heap import freeze_start  # noqa: E402

freeze_start()
