import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
application = get_wsgi_application()

# A web server process: load its plugins in the background now and take requests once they
# are warm (the warm-up page itself waits at most a page's budget) - bounded either way.
from stonks_plugins.conf import plugin_settings  # noqa: E402
from stonks_plugins.runtime.background import ensure_started  # noqa: E402

ensure_started(ready_within=2 * float(plugin_settings.PAGE_BUDGET) + 1)

# The URL configuration (the API's schema views pull in DRF's and Django's test modules) is
# imported now, not on each worker's first request, which a user would wait for.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018

# So are the home page's templates (compiled once per process by the cached loader): about
# 10 ms of each worker's first page otherwise.
from django.template.loader import get_template  # noqa: E402

for _name in ("base.html", "home.html"):
    get_template(_name)

# Everything the start made lives as long as the process: out of the collector's way, so an
# oldest-generation collection during a page walks only what came since (runtime.heap).
from stonks_plugins.runtime.heap import freeze_start  # noqa: E402

freeze_start()
