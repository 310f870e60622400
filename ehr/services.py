"""Provides the EHR's own services: demo users and their links to FHIR identities."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser

from smart.models import UserFhirIdentity

User = get_user_model()


def user_ensure(
    *,
    username: str,
    password: str,
    fhir_user: str | None = None,
    first_name: str = "",
    last_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> AbstractUser:
    """Create or update a login, set its password, and link it to its FHIR resource (fhirUser)."""
    user, _ = User.objects.get_or_create(username=username)
    user.first_name, user.last_name = first_name, last_name
    user.is_staff, user.is_superuser = is_staff or is_superuser, is_superuser
    user.set_password(password)
    user.save()
    if fhir_user:
        UserFhirIdentity.objects.update_or_create(user=user, defaults={"fhir_user": fhir_user})
    return user
