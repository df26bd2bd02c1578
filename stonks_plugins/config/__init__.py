"""Plugin configuration (the seed's phase 3): a JSON Schema per plugin, validation that fills
defaults and names every bad field, secrets encrypted at rest and never shown, versions with
history and rollback, and hot application in every process.

Modules: :mod:`.schema` (where a plugin's schema comes from, which fields are secret),
:mod:`.validation` (defaults, strictness, errors with JSON paths), :mod:`.secrets`
(encryption and masking), :mod:`.versions` (saving, history, rollback, stale writes),
:mod:`.system` (the seed's DynamicConfigSystem: merging and building config objects),
:mod:`.apply` (applying a saved version, run by a Celery task).
"""
