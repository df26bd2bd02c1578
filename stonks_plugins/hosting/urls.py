from django.urls import path, re_path

from . import views

urlpatterns = [
    path("<str:name>/static/<path:path>", views.static, name="plugin-static"),
    re_path(r"^(?P<name>[^/]+)/(?P<rest>.*)$", views.dispatch, name="plugin-page"),
]
