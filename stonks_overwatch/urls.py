from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("plugins/", include("stonks_plugins.hosting.urls")),
    path("api/v1/", include("stonks_plugins.api.urls")),
]
