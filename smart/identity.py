"""Provides the default `fhirUser` resolver: the user's linked FHIR resource (smart.models.UserFhirIdentity)."""

from django.contrib.auth.models import AbstractBaseUser

from smart.models import UserFhirIdentity


def fhir_user_for(user: AbstractBaseUser | None) -> str | None:
    """The relative reference of the user's own FHIR resource ("Practitioner/x" or "Patient/y"), or None."""
    if user is None or not user.is_authenticated:
        return None
    identity = UserFhirIdentity.objects.filter(user=user).only("fhir_user").first()
    return identity.fhir_user if identity else None
