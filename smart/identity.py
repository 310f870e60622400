"""Provides the default `fhirUser` resolver: the user's linked FHIR resource (smart.models.UserFhirIdentity)."""

from django.contrib.auth.models import AbstractBaseUser

from smart.models import UserFhirIdentity


def fhir_user_for(user: AbstractBaseUser | None) -> str | None:
    """The relative reference of the user's own FHIR resource ("Practitioner/x" or "Patient/y"), or None."""
    if user is None or not user.is_authenticated:
        return None
    try:
        # No query when the caller loaded it with the user (select_related("user__fhir_identity")).
        identity = user.fhir_identity  # type: ignore[attr-defined]
    except UserFhirIdentity.DoesNotExist:
        return None
    return identity.fhir_user
