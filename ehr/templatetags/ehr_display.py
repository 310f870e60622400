"""Provides the EHR's template filters: one-line wrappers over ehr.presenters, no logic of their own."""

from django import template

register = template.Library()

_STATUS_TONES = {
    "active": "ok",
    "completed": "muted",
    "finished": "muted",
    "resolved": "muted",
    "inactive": "muted",
    "stopped": "muted",
    "cancelled": "muted",
    "entered-in-error": "muted",
    "on-hold": "warn",
    "in-progress": "info",
    "high": "alert",
    "low": "warn",
    "severe": "alert",
    "moderate": "warn",
    "mild": "info",
}


@register.filter
def tone(status: str) -> str:
    """The badge colour class for a status or flag ("ok", "warn", "alert", "info", "muted")."""
    return _STATUS_TONES.get((status or "").lower(), "muted")


@register.filter
def initials(name: str) -> str:
    """Up to two initials, for an app without a logo."""
    words = [w for w in (name or "").split() if w[:1].isalnum()]
    return "".join(w[0].upper() for w in words[:2]) or "?"
