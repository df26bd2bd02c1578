"""What ``OPTIONS`` answers on the API's endpoints: the methods, the media types, and where
the request bodies are described.

DRF's default describes a POST or PUT body from the view's serializer, which here is the
*response* serializer (the actions take no body, the config is the plugin's own JSON Schema)
and which, for the config, needs an object lookup the config views do not have. The OpenAPI
schema is the one truthful description, so OPTIONS points at it instead.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.urls import NoReverseMatch, reverse
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request


class SchemaPointerMetadata(SimpleMetadata):
    def determine_actions(self, request: Request, view: Any) -> dict[str, Any]:
        return {}

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        metadata: dict[str, Any] = dict(super().determine_metadata(request, view))
        with contextlib.suppress(NoReverseMatch):  # the API mounted without its schema
            metadata["schema"] = reverse("plugins_api:schema")
        return metadata
