"""System checks of the trust settings: a policy that is not ``off``, ``warn`` or
``enforce``, or a trusted key that is not an Ed25519 public key, is an error that names the
bad value (until it is fixed the policy fails closed, see :mod:`.policy`)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from ..conf import plugin_settings
from .policy import key_texts, policy_problem


@checks.register(checks.Tags.security)
def check_trust_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .signatures import KeyProblem, parse_public_key

    errors: list[checks.CheckMessage] = []
    problem = policy_problem(plugin_settings.SIGNATURE_POLICY)
    if problem is not None:
        errors.append(
            checks.Error(
                problem,
                hint="Set PLUGINS_SIGNATURE_POLICY to off, warn or enforce; until then "
                "plugins are judged as under 'enforce'.",
                id="stonks_plugins.trust.E001",
            )
        )
    raw = plugin_settings.TRUSTED_KEYS
    if not isinstance(raw, str | list | tuple):
        errors.append(
            checks.Error(
                f"PLUGINS_TRUSTED_KEYS is a {type(raw).__name__}; it must be a list of keys "
                "or one comma-separated string",
                id="stonks_plugins.trust.E002",
            )
        )
        return errors
    for index, text in enumerate(key_texts(raw)):
        try:
            parse_public_key(text)
        except KeyProblem as exc:
            errors.append(
                checks.Error(
                    f"PLUGINS_TRUSTED_KEYS[{index}]: {exc}",
                    hint="Use the line 'manage.py plugins keygen FILE' printed: "
                    "'ed25519:' and the base64 of the 32-byte public key. This key trusts "
                    "nothing until it is fixed.",
                    id="stonks_plugins.trust.E002",
                )
            )
    return errors
