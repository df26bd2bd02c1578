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
