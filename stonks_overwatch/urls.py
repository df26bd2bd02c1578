from django.contrib import admin
from django.urls import include, path

from stonks_plugins.api.prometheus import metrics

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus text format: loopback clients, or Bearer PLUGINS_METRICS_TOKEN.
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("plugins/", include("stonks_plugins.hosting.urls")),
    path("api/v1/", include("stonks_plugins.api.urls")),
]
