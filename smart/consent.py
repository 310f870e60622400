"""Provides scope negotiation at /authorize and remembered consent.

Granted scope = requested ∩ the client's registered scopes ∩ what the user's role allows ∩ the user's
choice on the consent screen (SMART App Launch 2.x scopes-and-launch-context.html; checklist #19, #24,
#84, #89). Unknown scopes are dropped, never an error. A scope granted whole keeps the form it was
requested in (v1 stays v1, checklist #88).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from fhirapi.access import PATIENT_COMPARTMENT_TYPES, Context
from smart.models import Application, ConsentRecord
from smart.scopes import (
    category_subscopes,
    describe_scope,
    intersect_scopes,
    parse_scope,
    scope_covered,
)

# Scopes that name how context is chosen rather than what data is shared: not part of remembered consent.
LAUNCH_CONTEXT_SCOPES = frozenset({"launch", "launch/patient", "launch/encounter"})
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})

OFFLINE_WARNING = (
    "The app can keep reading this data when you are not using it, until you revoke its access "
    "on the connected apps page."
)


@dataclass(frozen=True)
class ConsentItem:
    """One line of the consent screen: a scope, its plain words, and narrower scopes offered instead."""

    scope: str
    description: str
    warning: str = ""
    subscopes: tuple[tuple[str, str], ...] = ()  # (scope, description)


def scopes_offered(
    *, requested: Iterable[str], client: Application, patient_user: bool, has_launch: bool
) -> list[str]:
    """What may be granted before the user chooses: requested ∩ registered ∩ the user's role.

    Nobody gets `system/` scopes through /authorize. A patient user gets `user/` scopes only on types outside
    the patient compartment (reference data such as Practitioner); their own record comes through `patient/`
    scopes. `launch` is kept only when the request carried a launch id.
    """
    granted = intersect_scopes(list(requested), client.allowed_scopes)
    return [s for s in granted if _role_allows(s, patient_user=patient_user, has_launch=has_launch)]


def _role_allows(scope: str, *, patient_user: bool, has_launch: bool) -> bool:
    if scope == "launch":
        return has_launch
    parsed = parse_scope(scope)
    if parsed is None:
        return True
    if parsed.context is Context.SYSTEM:
        return False
    if patient_user and parsed.context is Context.USER:
        return parsed.resource_type != "*" and parsed.resource_type not in PATIENT_COMPARTMENT_TYPES
    return True


def needs_patient(scopes: Iterable[str]) -> bool:
    """Whether a grant of these scopes needs a patient in context (checklist #18: infer launch/patient)."""
    return any(s == "launch/patient" or s.startswith("patient/") for s in scopes)


def consent_required(
    *, user: AbstractBaseUser, client: Application, scopes: list[str], patient_user: bool
) -> bool:
    """Whether the user must be asked: not for pre-authorized apps (except a patient's own `patient/` data)
    nor when an earlier consent already covers every scope."""
    if client.skip_authorization and not (patient_user and any(s.startswith("patient/") for s in scopes)):
        return False
    record = ConsentRecord.objects.filter(user=user, application=client).first()
    return record is None or not consent_covers(record.scope, scopes)


def consent_covers(consented: str, scopes: Iterable[str]) -> bool:
    """Whether the consented scope string covers all of `scopes` (launch-context scopes aside)."""
    return all(scope_covered(s, consented) for s in scopes if s not in LAUNCH_CONTEXT_SCOPES)


def consent_remember(*, user: AbstractBaseUser, client: Application, scopes: list[str]) -> ConsentRecord:
    """Record what the user just granted, replacing the earlier record (a deselection is remembered too)."""
    record, _ = ConsentRecord.objects.update_or_create(
        user=user, application=client, defaults={"scope": " ".join(scopes)}
    )
    return record


def consent_items(scopes: list[str]) -> list[ConsentItem]:
    """The consent screen's lines, with category sub-scopes for Observation and Condition (checklist #89)."""
    return [
        ConsentItem(
            scope=scope,
            description=describe_scope(scope),
            warning=OFFLINE_WARNING if scope == "offline_access" else "",
            subscopes=tuple((sub, describe_scope(sub)) for sub in category_subscopes(scope)),
        )
        for scope in scopes
    ]


def scopes_chosen(*, offered: list[str], choice: Iterable[str]) -> list[str]:
    """The user's ticked scopes, limited to what was offered and its sub-scopes, without redundant ones.

    A sub-scope ticked next to its whole type is dropped: the whole type already grants it.
    """
    ticked = set(choice)
    chosen: list[str] = []
    for scope in offered:
        if scope in ticked:
            chosen.append(scope)
        else:
            chosen += [sub for sub in category_subscopes(scope) if sub in ticked]
    return list(dict.fromkeys(chosen))


def scopes_for_context(
    scopes: list[str], *, has_patient: bool, patient_picked: bool, encounter_picked: bool
) -> list[str]:
    """Keep `launch/patient` only when the user picked a patient and `launch/encounter` only when they
    picked an encounter; drop `patient/` scopes when no patient is in context (they would reach nothing)."""

    def keep(scope: str) -> bool:
        if scope == "launch/patient":
            return patient_picked
        if scope == "launch/encounter":
            return encounter_picked
        return has_patient or not scope.startswith("patient/")

    return [s for s in scopes if keep(s)]
