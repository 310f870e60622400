"""Provides the EHR's template filters and tags: one-line wrappers, no logic of their own."""

from django import template

from ehr.selectors import user_is_patient

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


@register.simple_tag
def is_patient_user(user) -> bool:  # type: ignore[no-untyped-def]
    """Whether the signed-in user is a portal (patient) user, for the navigation."""
    return bool(user and user.is_authenticated and user_is_patient(user))
