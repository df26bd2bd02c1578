"""A Django form generated from a plugin's config JSON Schema, for the admin console.

The form only *shapes* input: it turns each leaf of the schema into a field (dotted names for
nested objects, which become fieldsets), coerces what it can and hands everything else to
``manager.set_config``. Validation stays in one place — the config system — so the admin, the
API and the CLI refuse exactly the same configs with the same messages; the form's job is to
put each refusal beside the field whose JSON path it names.

Secrets are write-only: their inputs render the mask when a value is stored (never the value,
not even the one just typed), and a mask sent back means "keep the stored secret".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_lazy

from .. import jsonpath
from ..config.schema import is_secret
from ..redaction import MASK

BASE_VERSION_FIELD = "_config_base_version"
"""The hidden field carrying the version the form was rendered from (stale-write check)."""
SUBMIT_FIELD = "_config_submit"
"""Present in a POST made by the config form (the plugin page has other forms too)."""

SCALAR_KINDS = ("string", "secret", "integer", "number", "boolean", "enum", "json")


@dataclass(frozen=True)
class FieldSpec:
    """One form field: where it lives in the config and how it is edited."""

    path: tuple[str, ...]
    kind: str  # one of SCALAR_KINDS
    schema: Mapping[str, Any]
    required: bool

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def json_path(self) -> str:
        return jsonpath.join(self.path)

    @property
    def label(self) -> str:
        return str(self.schema.get("title") or capfirst(self.path[-1].replace("_", " ")))


@dataclass
class Fieldset:
    """The fields of one object of the schema (``credentials``, ``settings``...)."""

    path: tuple[str, ...]
    title: str
    description: str = ""
    specs: list[FieldSpec] = field(default_factory=list)


def _types(node: Mapping[str, Any]) -> list[str]:
    raw = node.get("type")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        return [t for t in raw if isinstance(t, str) and t != "null"]
    return []


def _is_object(node: Mapping[str, Any]) -> bool:
    return "object" in _types(node) or isinstance(node.get("properties"), dict)


def _kind(node: Mapping[str, Any], key: str) -> str:
    if isinstance(node.get("enum"), list) and node["enum"]:
        return "enum"
    types = _types(node)
    first = types[0] if len(types) == 1 else ""
    if is_secret(dict(node), key):
        return "secret"
    if first in ("string", "integer", "number", "boolean"):
        return first
    return "json"  # arrays, free maps, unions, untyped settings: edited as JSON text


def fieldsets(schema: Mapping[str, Any]) -> list[Fieldset]:
    """The schema's leaves grouped by the object that holds them; top-level leaves first."""
    out: list[Fieldset] = []
    top = Fieldset((), gettext("General"))
    out.append(top)
    _walk(schema, (), top, out)
    return [fs for fs in out if fs.specs]


def _walk(
    node: Mapping[str, Any], prefix: tuple[str, ...], current: Fieldset, out: list[Fieldset]
) -> None:
    props = node.get("properties")
    if not isinstance(props, dict):
        return
    required = set(node.get("required") or [])
    for key, sub in props.items():
        if not isinstance(sub, dict):
            continue
        path = (*prefix, key)
        if _is_object(sub) and isinstance(sub.get("properties"), dict) and sub["properties"]:
            title = str(sub.get("title") or capfirst(key.replace("_", " ")))
            group = Fieldset(path, title, str(sub.get("description") or ""))
            out.append(group)
            _walk(sub, path, group, out)
        else:
            current.specs.append(FieldSpec(path, _kind(sub, key), sub, key in required))


_RULE_WORDS = (
    ("minimum", gettext_lazy("minimum %(value)s")),
    ("maximum", gettext_lazy("maximum %(value)s")),
    ("exclusiveMinimum", gettext_lazy("greater than %(value)s")),
    ("exclusiveMaximum", gettext_lazy("less than %(value)s")),
    ("minLength", gettext_lazy("at least %(value)s characters")),
    ("maxLength", gettext_lazy("at most %(value)s characters")),
    ("pattern", gettext_lazy("matching %(value)s")),
)
"""A schema rule in words, for a field's help text."""


def _hints(spec: FieldSpec) -> str:
    """The schema's description plus its rules, in words, as the field's help text."""
    s = spec.schema
    parts = [str(s["description"])] if s.get("description") else []
    rules = [str(words) % {"value": s[key]} for key, words in _RULE_WORDS if key in s]
    if spec.kind == "json":
        rules.append(gettext("a JSON value (text that is not JSON is taken as a string)"))
    if "default" in s and spec.kind != "secret":
        rules.append(gettext("default %(value)s") % {"value": json.dumps(s["default"])})
    if spec.kind == "secret":
        rules.append(gettext("write-only: leave the mask to keep the stored value"))
    if rules:
        parts.append("(" + "; ".join(rules) + ")")
    return " ".join(parts)


class SecretInput(forms.PasswordInput):
    """Shows the mask when a secret is stored, else nothing — never a value, not even one the
    user just typed into a form that came back with errors."""

    def __init__(self, stored: bool, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, render_value=False)
        self.stored = stored

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        keep = self.stored and (value is None or value == MASK)
        context = super().get_context(name, None, attrs)
        context["widget"]["value"] = MASK if keep else None
        return context


def _enum_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _number(text: str, integer: bool) -> Any:
    """The number typed, or the text itself so that the config system names the type error
    with its JSON path, like every other error."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if integer and value.is_integer() else value


def _tagged(f: forms.Field, spec: FieldSpec) -> forms.Field:
    """The template reads the spec from the field: kind, required, JSON path."""
    f.spec = spec  # type: ignore[attr-defined]
    return f


class ConfigForm(forms.Form):
    """The config of one plugin as a form. ``schema`` is the public schema (secrets marked
    ``writeOnly``); ``data`` the latest version as anyone may see it (secrets masked)."""

    def __init__(
        self,
        schema: Mapping[str, Any],
        data: Mapping[str, Any],
        version: int,
        *args: Any,
        read_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.schema = schema
        self.data_before: dict[str, Any] = copy.deepcopy(dict(data))
        self.version = version
        self.read_only = read_only
        self.groups = fieldsets(schema)
        self.specs: dict[str, FieldSpec] = {}
        self._stale_link = False
        for group in self.groups:
            for spec in group.specs:
                self.specs[spec.name] = spec
                self.fields[spec.name] = self._field(spec)
        self.fields[BASE_VERSION_FIELD] = forms.IntegerField(
            widget=forms.HiddenInput, initial=version, required=False, disabled=read_only
        )

    # -- building -------------------------------------------------------------------------
    def _initial(self, spec: FieldSpec) -> Any:
        if jsonpath.has(self.data_before, spec.path):
            value = jsonpath.get(self.data_before, spec.path)
        elif "default" in spec.schema:
            value = spec.schema["default"]
        else:
            return None
        if spec.kind == "enum":
            return _enum_key(value)
        if spec.kind == "json":
            return value if isinstance(value, str) else json.dumps(value)
        return value

    def _field(self, spec: FieldSpec) -> forms.Field:
        s = spec.schema
        attrs: dict[str, Any] = {"data-json-path": spec.json_path}
        common: dict[str, Any] = {
            "label": spec.label,
            "help_text": _hints(spec),
            "required": False,  # the config system says what is missing, with its path
            "disabled": self.read_only,
            "initial": self._initial(spec),
        }
        f: forms.Field
        if spec.kind == "enum":
            choices = [(_enum_key(v), str(v)) for v in s["enum"]]
            if not spec.required and "default" not in s:
                choices.insert(0, ("", "—"))
            f = forms.ChoiceField(choices=choices, widget=forms.Select(attrs=attrs), **common)
        elif spec.kind == "boolean":
            f = forms.BooleanField(widget=forms.CheckboxInput(attrs=attrs), **common)
        elif spec.kind in ("integer", "number"):
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if key in s:
                    attrs[attr] = s[key]
            attrs["step"] = "1" if spec.kind == "integer" else "any"
            f = forms.CharField(widget=forms.NumberInput(attrs=attrs), **common)
        elif spec.kind == "secret":
            stored = jsonpath.get(self.data_before, spec.path) == MASK
            attrs["autocomplete"] = "new-password"
            common["initial"] = MASK if stored else None
            f = forms.CharField(widget=SecretInput(stored, attrs), strip=False, **common)
        elif spec.kind == "json":
            f = forms.CharField(widget=forms.TextInput(attrs={**attrs, "size": 60}), **common)
        else:
            for key, attr in (("minLength", "minlength"), ("maxLength", "maxlength")):
                if key in s:
                    attrs[attr] = s[key]
            f = forms.CharField(widget=forms.TextInput(attrs=attrs), strip=False, **common)
        return _tagged(f, spec)

    # -- reading ----------------------------------------------------------------------------
    @property
    def base_version(self) -> int | None:
        value = self.cleaned_data.get(BASE_VERSION_FIELD)
        return int(value) if value is not None else None

    def config_data(self) -> dict[str, Any]:
        """The config the form describes: the latest version (masked secrets, which the
        config system keeps) with each field's value set, or removed when left empty. Keys the
        form cannot show are kept as they were."""
        out = copy.deepcopy(self.data_before)
        for name, spec in self.specs.items():
            raw = self.cleaned_data.get(name)
            present, value = self._value(spec, raw)
            if present:
                jsonpath.put(out, spec.path, value)
            else:
                jsonpath.drop(out, spec.path)
        return out

    def _value(self, spec: FieldSpec, raw: Any) -> tuple[bool, Any]:
        if spec.kind == "boolean":
            return True, bool(raw)
        if raw is None or raw == "":
            return False, None
        if spec.kind == "enum":
            by_key = {_enum_key(v): v for v in spec.schema["enum"]}
            return True, by_key.get(raw, raw)
        if spec.kind in ("integer", "number"):
            return True, _number(str(raw).strip(), spec.kind == "integer")
        if spec.kind == "json":
            try:
                return True, json.loads(raw)
            except ValueError:
                return True, raw
        return True, raw  # string, or a secret (the mask keeps the stored one)

    # -- errors -----------------------------------------------------------------------------
    def field_for_path(self, path: str) -> str | None:
        """The field a JSON path (``$.settings.currency``, ``$.list[0]``) falls under."""
        best: str | None = None
        for name, spec in self.specs.items():
            jp = spec.json_path
            if (path == jp or path.startswith((jp + ".", jp + "["))) and (
                best is None or len(jp) > len(self.specs[best].json_path)
            ):
                best = name
        return best

    def add_issues(self, issues: Iterable[Any]) -> None:
        """Put each ``ConfigIssue`` beside its field; issues without one (an unknown key, a
        whole section) become non-field errors that name their path."""
        for issue in issues:
            name = self.field_for_path(issue.path)
            values = {"message": issue.message, "path": issue.path, "rule": issue.rule}
            if name is not None:
                self.add_error(name, gettext("%(message)s (%(path)s, rule: %(rule)s)") % values)
            else:
                self.add_error(None, gettext("%(path)s: %(message)s (rule: %(rule)s)") % values)

    def add_stale(self, message: str) -> None:
        self._stale_link = True
        self.add_error(None, message)

    @property
    def stale(self) -> bool:
        return self._stale_link

    def grouped(self) -> Iterator[tuple[Fieldset, list[forms.BoundField]]]:
        for group in self.groups:
            yield group, [self[spec.name] for spec in group.specs]

    def path_errors(self) -> list[str]:
        return [str(e) for e in self.errors.get(NON_FIELD_ERRORS, [])]
