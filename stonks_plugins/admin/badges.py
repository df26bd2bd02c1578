"""The console's badges: a state, a health status or a trust status as a coloured label. The
CSS class keeps the stable code; the text is its name in the active language (``labels``)."""

from __future__ import annotations

from typing import Any

from django.utils.html import format_html
from django.utils.translation import pgettext_lazy

from ..trust import describe as describe_trust
from .labels import health_label, state_label, trust_label


def state_badge(state: str) -> str:
    return format_html(
        '<span class="so-badge so-state-{}">{}</span>', state or "unknown", state_label(state)
    )


def health_badge(status: str | None) -> str:
    if not status:
        return format_html('<span class="so-badge so-health-none">{}</span>', health_label(None))
    return format_html(
        '<span class="so-badge so-health-{}">{}</span>', status, health_label(status)
    )


# The health badge colours say it: trusted green, unsigned grey, doubtful amber, refused red.
_TRUST_COLOURS = {
    "signed": "healthy",
    "unsigned": "none",
    "untrusted_key": "degraded",
    "bad_signature": "unhealthy",
    "tampered": "unhealthy",
}


def trust_badge(trust: Any, source: str = "") -> str:
    status = trust.get("status") if isinstance(trust, dict) else None
    if source == "legacy":
        return format_html(
            '<span class="so-badge so-health-none">{}</span>', pgettext_lazy("trust", "built in")
        )
    if status not in _TRUST_COLOURS:
        return format_html('<span class="so-badge so-health-none">{}</span>', health_label(None))
    if status == "signed" and not trust.get("trusted"):
        colour = "degraded"  # a valid signature over no lock
    else:
        colour = _TRUST_COLOURS[status]
    return format_html(
        '<span class="so-badge so-health-{}" title="{}">{}</span>',
        colour,
        describe_trust(trust, short=True),
        trust_label(status),
    )
