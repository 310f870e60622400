"""Provides the authorization server's tables: SMART client apps, launch contexts, and DOT's swapped token models.

django-oauth-toolkit's models are swapped in here (settings OAUTH2_PROVIDER_*_MODEL) so that grants and tokens
carry the SMART launch context; code reaches them only through DOT's get_*_model() accessors.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from oauth2_provider.models import (
    AbstractAccessToken,
    AbstractApplication,
    AbstractGrant,
    AbstractIDToken,
    AbstractRefreshToken,
)


class Application(AbstractApplication):
    """A registered SMART client app (or backend service)."""

    class SmartClientType(models.TextChoices):
        PUBLIC = "public", "Public (browser or native app, no secret)"
        CONFIDENTIAL = "confidential", "Confidential with a client secret"
        ASYMMETRIC = "asymmetric", "Confidential with private_key_jwt"
        BACKEND = "backend", "Backend service (client_credentials + private_key_jwt)"

    class LaunchMode(models.TextChoices):
        EMBEDDED = "embedded", "Embedded in the chart (iframe)"
        WINDOW = "window", "In a new window"

    class Audience(models.TextChoices):
        CLINICIAN = "clinician", "Clinicians (chart launcher)"
        PATIENT = "patient", "Patients (portal)"
        BOTH = "both", "Clinicians and patients"

    description = models.TextField(blank=True)
    logo_uri = models.URLField(blank=True, max_length=512)
    launch_uri = models.URLField(blank=True, max_length=512)
    smart_client_type = models.CharField(
        max_length=16, choices=SmartClientType.choices, default=SmartClientType.PUBLIC
    )
    token_endpoint_auth_method = models.CharField(max_length=32, default="none")
    allowed_scopes = models.TextField(
        blank=True, help_text="Space-separated scopes this app may be granted (wildcards allowed)."
    )
    client_jwks = models.JSONField(null=True, blank=True, help_text="Inline JWKS with the app's public keys.")
    client_jwks_uri = models.URLField(blank=True, max_length=512, help_text="URL of the app's JWKS.")
    launch_mode = models.CharField(max_length=16, choices=LaunchMode.choices, default=LaunchMode.EMBEDDED)
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.CLINICIAN)
    enabled = models.BooleanField(default=True)
    last_used = models.DateTimeField(null=True, blank=True)
    secret_rotated = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "SMART app"
        verbose_name_plural = "SMART apps"


def _new_launch_id() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


class LaunchContext(models.Model):
    """One EHR launch: the context an app receives when it exchanges the opaque `launch` token."""

    launch = models.CharField(max_length=64, unique=True, default=_new_launch_id)
    application = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE)
    # No index of its own: smart_launch_user_recent (user, -created) below serves every lookup by user, and one
    # index fewer is one page fewer to write per launch.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, db_index=False)
    patient_id = models.CharField(max_length=64, blank=True)
    encounter_id = models.CharField(max_length=64, blank=True)
    intent = models.CharField(max_length=64, blank=True)
    fhir_context = models.JSONField(default=list, blank=True)
    need_patient_banner = models.BooleanField(default=True)
    smart_style_url = models.URLField(blank=True, max_length=512)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    consumed = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-created"], name="smart_launch_user_recent")]

    def __str__(self) -> str:
        return f"launch of {self.application_id} for patient {self.patient_id or '-'}"

    @property
    def is_expired(self) -> bool:
        return timezone.now() >= self.expires

    @staticmethod
    def default_expiry(ttl_seconds: int) -> "timezone.datetime":
        return timezone.now() + timedelta(seconds=ttl_seconds)


class Grant(AbstractGrant):
    """An authorization code, with the SMART context it will hand to the token response."""

    launch_context = models.JSONField(default=dict, blank=True)
    launch = models.ForeignKey(
        LaunchContext, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"


class AccessToken(AbstractAccessToken):
    """An access token, carrying the SMART context the FHIR API enforces."""

    launch_context = models.JSONField(default=dict, blank=True)
    launch = models.ForeignKey(
        LaunchContext, null=True, blank=True, on_delete=models.SET_NULL, related_name="access_tokens"
    )
    last_used = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"


class RefreshToken(AbstractRefreshToken):
    """A refresh token, carrying the SMART context so refreshed access tokens keep it."""

    launch_context = models.JSONField(default=dict, blank=True)
    launch = models.ForeignKey(
        LaunchContext, null=True, blank=True, on_delete=models.SET_NULL, related_name="refresh_tokens"
    )

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"


class IDToken(AbstractIDToken):
    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class ConsentRecord(models.Model):
    """Scopes a user granted an app, so a returning app is asked again only when it asks for more."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    application = models.ForeignKey(settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE)
    scope = models.TextField()
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "application"], name="smart_consent_unique")]


class UsedClientAssertion(models.Model):
    """A client assertion `jti` already seen, kept until the assertion expires (replay protection)."""

    client_id = models.CharField(max_length=100)
    jti_hash = models.CharField(max_length=64)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "jti_hash"], name="smart_jti_unique")]


class UserFhirIdentity(models.Model):
    """Links an EHR user to the FHIR resource that is them (`fhirUser`): a Practitioner or a Patient."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fhir_identity"
    )
    fhir_user = models.CharField(max_length=130, help_text='Relative reference, e.g. "Practitioner/123".')

    def __str__(self) -> str:
        return f"{self.user} = {self.fhir_user}"

    @property
    def is_patient(self) -> bool:
        return self.fhir_user.startswith("Patient/")


class LaunchEvent(models.Model):
    """One step of a launch, for the developer launcher's timeline. Never holds a code, token or secret."""

    class Kind(models.TextChoices):
        LAUNCH_CREATED = "launch-created"
        AUTHORIZE_REQUEST = "authorize-request"
        AUTHORIZE_ERROR = "authorize-error"
        CONSENT = "consent"
        TOKEN_ISSUED = "token-issued"
        TOKEN_ERROR = "token-error"
        FHIR_CALL = "fhir-call"

    launch = models.ForeignKey(LaunchContext, on_delete=models.CASCADE, related_name="events")
    created = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created", "pk"]

    def __str__(self) -> str:
        return f"{self.kind} of launch {self.launch_id}"
