"""The config form: generated from the plugin's JSON Schema, submitted through
``manager.set_config`` with the version it was rendered from; errors beside the field whose
JSON path they name; secrets masked, write-only and kept when left masked."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms

from stonks_overwatch.core.factory import BrokerFactory
from stonks_plugins.admin.forms import BASE_VERSION_FIELD, SUBMIT_FIELD, ConfigForm
from stonks_plugins.config.validation import ConfigIssue
from stonks_plugins.manager import manager
from stonks_plugins.models import PluginConfig, PluginEvent
from stonks_plugins.redaction import MASK

from .conftest import GOOD, SECRET, change_url, page, shown_messages

pytestmark = pytest.mark.django_db


def form_data(base: int, **fields: str) -> dict[str, str]:
    data = {
        SUBMIT_FIELD: "1",
        BASE_VERSION_FIELD: str(base),
        "credentials.username": "ana",
        "credentials.password": SECRET,
        "settings.currency": "EUR",
        "settings.refresh_minutes": "60",
    }
    data.update({k.replace("__", "."): v for k, v in fields.items()})
    return data


def field_row(html: str, name: str) -> str:
    start = html.index(f'data-config-field="{name}"')
    return html[start : html.index("</div>\n            </div>", start)]


def test_form_fields_come_from_the_schema(console, operator) -> None:  # type: ignore[no-untyped-def]
    response = operator.get(change_url("config-fixture"))
    html = page(response)
    form: ConfigForm = response.context["config_form"]
    assert [(g.title, [s.name for s in g.specs]) for g in form.groups] == [
        ("Credentials", ["credentials.username", "credentials.password"]),
        ("Settings", ["settings.currency", "settings.refresh_minutes"]),
    ]
    f = form.fields
    assert isinstance(f["credentials.username"].widget, forms.TextInput)
    assert isinstance(f["credentials.password"].widget, forms.PasswordInput)
    assert isinstance(f["settings.currency"], forms.ChoiceField)
    assert [c for c, _ in f["settings.currency"].choices] == ["EUR", "USD", "GBP", "XXX"]
    assert isinstance(f["settings.refresh_minutes"].widget, forms.NumberInput)
    # defaults as initial values, descriptions and rules as help text, required marked
    assert f["settings.currency"].initial == "EUR"
    assert f["settings.refresh_minutes"].initial == 60
    assert "refused by the plugin" in f["settings.currency"].help_text
    assert "minimum 1" in f["settings.refresh_minutes"].help_text
    assert {s.name for s in form.specs.values() if s.required} == {
        "credentials.username",
        "credentials.password",
    }
    assert '<label for="id_credentials.username" class="required">' in html
    assert '<option value="EUR" selected>EUR</option>' in html
    assert 'name="settings.refresh_minutes" value="60"' in html
    assert 'type="password" name="credentials.password"' in html
    assert 'data-config-version="0"' in html  # nothing saved yet
    assert f'name="{BASE_VERSION_FIELD}" value="0"' in html


def test_an_invalid_value_is_shown_beside_its_field_and_nothing_is_saved(console, operator) -> None:  # type: ignore[no-untyped-def]
    response = operator.post(
        change_url("config-fixture"), form_data(0, settings__refresh_minutes="0")
    )
    html = page(response)
    errors = response.context["config_form"].errors
    assert errors == {
        "settings.refresh_minutes": [
            "0 is less than the minimum of 1 ($.settings.refresh_minutes, rule: minimum)"
        ]
    }
    assert "errorlist" in field_row(html, "settings.refresh_minutes")
    assert "less than the minimum" in field_row(html, "settings.refresh_minutes")
    assert "errorlist" not in field_row(html, "settings.currency")
    assert "Nothing was saved" in html
    assert not PluginConfig.objects.exists()
    # The rest of what was typed comes back, except the secret: it is never sent back.
    assert 'name="credentials.username" value="ana"' in html
    assert SECRET not in html


def test_every_bad_field_is_reported_with_its_own_message(console, operator) -> None:  # type: ignore[no-untyped-def]
    response = operator.post(
        change_url("config-fixture"),
        form_data(
            0,
            credentials__username="",
            credentials__password="short",
            settings__refresh_minutes="soon",
        ),
    )
    errors = response.context["config_form"].errors
    assert set(errors) == {
        "credentials.username",
        "credentials.password",
        "settings.refresh_minutes",
    }
    assert "is required but missing" in errors["credentials.username"][0]
    assert "value hidden: secret field" in errors["credentials.password"][0]
    assert "'soon' is not of type 'integer'" in errors["settings.refresh_minutes"][0]
    assert "short" not in page(response).split('id="config"')[1].split("</form>")[0]


def test_a_stale_form_is_refused_with_a_clear_error(console, operator, applied) -> None:  # type: ignore[no-untyped-def]
    applied(manager.set_config, "config-fixture", GOOD, actor="ana")
    rendered_at = operator.get(change_url("config-fixture")).context["config_form"].version
    assert rendered_at == 1
    # Someone else saves version 2 while the form is open.
    applied(
        manager.set_config,
        "config-fixture",
        {"settings": {"currency": "GBP"}},
        actor="bob",
        partial=True,
        base_version=1,
    )
    response = operator.post(
        change_url("config-fixture"),
        form_data(rendered_at, credentials__password=MASK, settings__currency="EUR"),
    )
    html = page(response)
    [error] = response.context["config_form"].non_field_errors()
    assert "you edited version 1 but the latest is version 2" in error
    assert "Load the latest version" in html
    assert PluginConfig.objects.count() == 2
    assert manager.get_config("config-fixture").data["settings"]["currency"] == "GBP"


@pytest.mark.django_db(transaction=True)  # commits apply at once, as in production
def test_a_valid_config_saves_a_new_version_and_shows_it(console, operator) -> None:  # type: ignore[no-untyped-def]
    response = operator.post(
        change_url("config-fixture"),
        form_data(0, settings__currency="USD", settings__refresh_minutes="15"),
        follow=True,
    )
    html = page(response)
    assert shown_messages(response) == [
        "Saved config version 1 ($.credentials, $.settings): active — in effect now."
    ]
    assert 'data-config-version="1"' in html and 'data-config-status="active"' in html
    assert '<option value="USD" selected>USD</option>' in html
    saved = PluginConfig.objects.get()
    assert (saved.version, saved.created_by, saved.status) == (1, "ops", "active")
    assert PluginEvent.objects.filter(reason__startswith="config version 1 saved", actor="ops")
    assert "CFG-USD" in operator.get("/").content.decode()  # applied: the plugin follows
    assert BrokerFactory().create_config("config-fixture").refresh_minutes == 15


@pytest.mark.django_db(transaction=True)  # commits apply at once, as in production
def test_the_secret_is_masked_write_only_and_kept_when_left_masked(console, operator) -> None:  # type: ignore[no-untyped-def]
    manager.set_config("config-fixture", GOOD, actor="ana")
    html = page(operator.get(change_url("config-fixture")))
    assert f'type="password" name="credentials.password" value="{MASK}"' in html
    assert SECRET not in html
    response = operator.post(
        change_url("config-fixture"),
        form_data(1, credentials__password=MASK, settings__currency="GBP"),
        follow=True,
    )
    assert shown_messages(response) == [
        "Saved config version 2 ($.settings.currency): active — in effect now."
    ]
    config = BrokerFactory().create_config("config-fixture")
    assert (config.password, config.currency) == (SECRET, "GBP")
    # A new value replaces it.
    operator.post(
        change_url("config-fixture"),
        form_data(2, credentials__password="a-new-long-secret"),
    )
    assert BrokerFactory().create_config("config-fixture").password == "a-new-long-secret"


@pytest.mark.django_db(transaction=True)  # commits apply at once, as in production
def test_a_config_the_plugin_refuses_is_reported_and_the_old_one_stays(console, operator) -> None:  # type: ignore[no-untyped-def]
    manager.set_config("config-fixture", GOOD, actor="ana")
    response = operator.post(
        change_url("config-fixture"),
        form_data(1, credentials__password=MASK, settings__currency="XXX"),
        follow=True,
    )
    [message] = shown_messages(response)
    assert message.startswith("Saved config version 2 ($.settings.currency), but the plugin")
    assert "failed — " in message and "ValueError: unsupported currency XXX" in message
    html = page(response)
    assert "Version 2 was refused when applied: " in html and "unsupported currency XXX" in html
    assert 'data-config-version="1"' in html  # the latest good one is the base
    assert "CFG-USD" in operator.get("/").content.decode()


def test_pending_when_the_workers_apply_it_later(console, operator) -> None:  # type: ignore[no-untyped-def]
    # Without a commit in this test's transaction, the apply task has not run yet.
    response = operator.post(change_url("config-fixture"), form_data(0), follow=True)
    [message] = shown_messages(response)
    assert "Saved config version 1" in message and "pending — being applied" in message
    assert 'data-config-status="pending"' in page(response)


# -- the generator on its own ------------------------------------------------------------
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "Display name", "maxLength": 20},
        "ratio": {"type": "number", "default": 0.5, "description": "share of the budget"},
        "live": {"type": "boolean", "default": False},
        "tags": {"type": "array", "items": {"type": "string"}},
        "level": {"enum": [1, 2, 3]},
        "api": {
            "type": "object",
            "description": "how to reach the broker",
            "properties": {
                "token": {"type": "string", "x-secret": True},
                "retry": {
                    "type": "object",
                    "properties": {"times": {"type": "integer", "minimum": 0}},
                },
            },
            "required": ["token"],
        },
    },
}


def test_types_map_to_fields_and_nested_objects_to_fieldsets() -> None:
    form = ConfigForm(SCHEMA, {}, 0)
    assert [(g.title, [s.name for s in g.specs]) for g in form.groups] == [
        ("General", ["name", "ratio", "live", "tags", "level"]),
        ("Api", ["api.token"]),
        ("Retry", ["api.retry.times"]),
    ]
    kinds = {name: spec.kind for name, spec in form.specs.items()}
    assert kinds == {
        "name": "string",
        "ratio": "number",
        "live": "boolean",
        "tags": "json",
        "level": "enum",
        "api.token": "secret",
        "api.retry.times": "integer",
    }
    f = form.fields
    assert f["name"].label == "Display name"
    assert f["name"].widget.attrs["maxlength"] == 20
    assert isinstance(f["live"], forms.BooleanField) and f["live"].initial is False
    assert f["ratio"].initial == 0.5 and "share of the budget" in f["ratio"].help_text
    assert [c for c, _ in f["level"].choices] == ["", "1", "2", "3"]  # optional: may be empty
    assert isinstance(f["api.token"].widget, forms.PasswordInput)
    assert form.groups[1].description == "how to reach the broker"


def test_submitted_values_become_typed_config_data() -> None:
    stored = {"api": {"token": MASK, "extra": "kept"}, "name": "old"}
    form = ConfigForm(
        SCHEMA,
        stored,
        3,
        {
            BASE_VERSION_FIELD: "3",
            "name": "",  # emptied: removed
            "ratio": "0.25",
            "live": "on",
            "tags": '["a", "b"]',
            "level": "2",
            "api.token": MASK,
            "api.retry.times": "4",
        },
    )
    assert form.is_valid(), form.errors
    assert form.base_version == 3
    assert form.config_data() == {
        "ratio": 0.25,
        "live": True,
        "tags": ["a", "b"],
        "level": 2,
        "api": {"token": MASK, "extra": "kept", "retry": {"times": 4}},
    }


def test_issues_go_beside_their_field_or_above_the_form() -> None:
    form = ConfigForm(SCHEMA, {}, 0, {BASE_VERSION_FIELD: "0"})
    assert form.is_valid()
    form.add_issues(
        [
            ConfigIssue("$.api.retry.times", "-1 is less than the minimum of 0", "minimum"),
            ConfigIssue("$.tags[1]", "3 is not of type 'string'", "type"),
            ConfigIssue("$.api.colour", "unknown key; expected one of: retry, token", "x"),
            ConfigIssue("$", "must be a JSON object", "type"),
        ]
    )
    assert form.errors["api.retry.times"] == [
        "-1 is less than the minimum of 0 ($.api.retry.times, rule: minimum)"
    ]
    assert form.errors["tags"] == ["3 is not of type 'string' ($.tags[1], rule: type)"]
    assert form.non_field_errors() == [
        "$.api.colour: unknown key; expected one of: retry, token (rule: x)",
        "$: must be a JSON object (rule: type)",
    ]


def test_a_secret_input_never_renders_a_typed_value() -> None:
    stored = ConfigForm(SCHEMA, {"api": {"token": MASK}}, 1, {"api.token": "typed-secret"})
    assert stored.is_valid()
    html = str(stored["api.token"])
    assert "typed-secret" not in html and 'value="' not in html
    kept = ConfigForm(SCHEMA, {"api": {"token": MASK}}, 1, {"api.token": MASK})
    assert f'value="{MASK}"' in str(kept["api.token"])
    fresh = ConfigForm(SCHEMA, {}, 0)
    assert 'value="' not in str(fresh["api.token"])
