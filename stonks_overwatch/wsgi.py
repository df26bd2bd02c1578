import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stonks_overwatch.settings")
application = get_wsgi_application()

# A web server process: load plugins in the background now, before the first request.
from stonks_plugins.runtime.background import ensure_started  # noqa: E402

ensure_started()
