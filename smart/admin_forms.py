"""Provides the admin form for SMART apps; it validates with smart.clients.client_validate."""

from django import forms
from django.core.exceptions import ValidationError
from oauth2_provider.models import get_application_model

from smart.clients import (
    SCOPE_PRESETS,
    client_type_apply,
    client_validate,
    default_preset,
    preset_scopes,
    split_uris,
)

Application = get_application_model()


class SmartApplicationForm(forms.ModelForm):
    """Add/change form: checks URIs, scopes and keys; derives DOT's grant type, auth method and algorithm."""

    scope_preset = forms.ChoiceField(
        required=False,
        choices=[
            ("", "— none —"),
            *((key, f"{label}: {scopes}") for key, (label, scopes) in SCOPE_PRESETS.items()),
        ],
        help_text="Fills the allowed scopes when they are left blank.",
    )
    # Explicit https default for scheme-less input (Django 6 changes URLField's default to https).
    logo_uri = forms.URLField(required=False, max_length=512, assume_scheme="https")
    launch_uri = forms.URLField(required=False, max_length=512, assume_scheme="https", label="Launch URL")
    client_jwks_uri = forms.URLField(required=False, max_length=512, assume_scheme="https", label="JWKS URL")

    class Meta:
        model = Application
        fields = [
            "name",
            "description",
            "logo_uri",
            "smart_client_type",
            "launch_uri",
            "launch_mode",
            "audience",
            "redirect_uris",
            "allowed_scopes",
            "client_jwks",
            "client_jwks_uri",
            "skip_authorization",
            "enabled",
        ]
        widgets = {
            "redirect_uris": forms.Textarea(attrs={"rows": 3}),
            "allowed_scopes": forms.Textarea(attrs={"rows": 3}),
            "client_jwks": forms.Textarea(attrs={"rows": 6}),
        }
        help_texts = {
            "redirect_uris": "One per line. https, or http only on 127.0.0.1, localhost or [::1].",
            "skip_authorization": "Skip the consent screen (only for apps the organisation trusts).",
        }

    def clean(self) -> dict:
        data = super().clean()
        client_type = data.get("smart_client_type")
        if client_type is None:
            return data
        data["redirect_uris"] = " ".join(split_uris(data.get("redirect_uris", "")))
        data["allowed_scopes"] = self._scopes(data, client_type)
        try:
            client_validate(
                client_type=client_type,
                redirect_uris=data["redirect_uris"].split(),
                scopes=data["allowed_scopes"],
                jwks=data.get("client_jwks"),
                jwks_uri=data.get("client_jwks_uri", ""),
                launch_uri=data.get("launch_uri", ""),
                fetch_jwks_uri=self.instance._state.adding or "client_jwks_uri" in self.changed_data,
            )
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages)
        self.instance.allowed_scopes = data.get("allowed_scopes", "")
        client_type_apply(self.instance, client_type)
        return data

    def _scopes(self, data: dict, client_type: str) -> str:
        scopes = " ".join(data.get("allowed_scopes", "").split())
        if scopes:
            return scopes
        preset = data.get("scope_preset") or default_preset(
            client_type=client_type, audience=data.get("audience")
        )
        return preset_scopes(preset)
