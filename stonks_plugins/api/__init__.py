"""The REST API under ``/api/v1/``: a thin HTTP layer over ``stonks_plugins.manager``.

Views translate requests into manager calls (with the requesting user as the actor) and the
results into JSON; every state change goes through the manager, so the API, the admin, the
CLI and the Celery tasks behave alike. The engine never imports this package.

Modules: ``serializers`` (request and response shapes, which are also the OpenAPI
components; a package by resource), ``base`` (what every plugin endpoint shares), ``views``
(the plugin viewset and the system health view; the viewset's health, metrics, imports and
events in ``monitor_views``, its instances in ``instance_views``), ``permissions``, ``filters``,
``pagination``, ``errors`` (the one error shape and the exception handler), ``parsers``
(the only body parser: JSON within the size, depth and text limits), ``metadata`` (what
OPTIONS answers), ``redaction``
(nothing secret leaves through the API), ``system`` (the load balancer's health rule) and
``urls``. The configuration endpoints (``plugins/{name}/config/...``) arrive with the
configuration system in ``config_views`` (see ``urls``).
"""
