"""The Django admin plugin console: a thin layer over ``stonks_plugins.manager.manager``.

Every change — enable, disable, reload, health check, sync, a new config — is a manager call
with the operator's username as the actor, so the admin, the API, the CLI and the tasks behave
alike and leave the same events. The admin itself only reads and presents:

- the plugin list: state badges, type, version, source, latest health, last error; filters,
  search and bulk actions that report one message per plugin;
- the plugin page: its fields, manifest, capabilities and services, its config as a form
  generated from the config JSON Schema, config history, events, health history and this
  process's metrics, with small server-rendered SVG charts;
- the console overview (``overview/``): every plugin's state and health at a glance.

Read-only staff (``view_plugin`` only) see all of it and change nothing: no action buttons,
a disabled config form, and any POST is refused with 403. Secrets never reach a page: the
config is read masked, and free text (events, health, errors, apply messages) is scrubbed of
secret-looking pairs and of the plugin's stored secret values (``config.shown``).

Modules: ``plugin_admin`` (``PluginAdmin``: the list and the plugin page), ``console`` (what
the pages show), ``actions`` (enable, disable, reload, check health, sync), ``install``
(install, uninstall, purge), ``instances``, ``dependents`` (the dependencies section and the
disable confirmation), ``forms`` (the config form), ``charts`` (SVG geometry), ``badges``,
``labels`` (words for codes, in the active language), ``filters`` (health), ``readonly`` and
``records`` (the event and config-version lists). Django's autodiscovery imports this
package; the imports below register the ModelAdmins.
"""

from . import plugin_admin, records

__all__ = ["plugin_admin", "records"]
