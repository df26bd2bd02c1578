"""Routes under ``/api/v1/`` (included by the host's urls as ``plugins_api``).

``plugins/sync/`` is matched before ``plugins/{name}/``; a GET there answers with the detail
of a plugin named ``sync`` (see ``PluginViewSet.retrieve_sync``), a POST syncs. Any other
path under ``/api/v1/`` is a JSON 404 in the API's error shape.
"""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from .config_views import PluginConfigViewSet
from .errors import unknown_endpoint
from .install_views import PluginInstallViewSet
from .log_views import PluginLogViewSet
from .views import PluginViewSet, SystemHealthView

app_name = "plugins_api"

router = SimpleRouter()
# plugins/install/ (and plugins/{name}/uninstall/, purge/): first, so that plugins/install/
# is not read as the detail of a plugin named "install" (install_views).
router.register("plugins", PluginInstallViewSet, basename="plugin-install")
router.register("plugins", PluginViewSet, basename="plugin")
# plugins/{name}/config/ (+ schema/, history/, rollback/): same authentication,
# permissions, name lookup and actor (views.PluginAPIView), on the same prefix.
router.register("plugins", PluginConfigViewSet, basename="plugin-config")
# plugins/{name}/logs/: the plugin's log records (log_views), the same way.
router.register("plugins", PluginLogViewSet, basename="plugin-log")

urlpatterns = [
    path("health/", SystemHealthView.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="plugins_api:schema"), name="docs"),
    *router.urls,
    re_path(r"^", unknown_endpoint),
]
