"""Provides the forms of the authorization pages: the hidden authorization request and each step's choice.

Every step page (patient picker, encounter picker, consent) posts the original authorization request back in
hidden fields, and /authorize validates it again from scratch, so a tampered field fails like a bad request.
The requested scope travels as `requested_scope`: on the consent form `scope` is the user's checkbox choice.
"""

from typing import Any

from django import forms
from django.db.models import TextChoices

STEP_FIELD = "smart_step"

# Authorization request parameters carried between steps (RFC 6749 §4.1.1, RFC 7636, OIDC, SMART).
AUTHORIZATION_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "launch",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)


def _hidden(max_length: int = 2000) -> forms.CharField:
    return forms.CharField(required=False, max_length=max_length, widget=forms.HiddenInput)


class AuthorizationStepForm(forms.Form):
    """A step of the authorization pages: the request in hidden fields plus the choices made so far."""

    class Step(TextChoices):
        PATIENT = "patient", "Choose a patient"
        ENCOUNTER = "encounter", "Choose an encounter"
        CONSENT = "consent", "Allow or deny"

    smart_step = forms.ChoiceField(choices=Step.choices, widget=forms.HiddenInput)
    response_type = _hidden(40)
    client_id = _hidden(255)
    redirect_uri = _hidden()
    requested_scope = _hidden(8000)
    state = _hidden()
    aud = _hidden()
    launch = _hidden(64)
    code_challenge = _hidden(128)
    code_challenge_method = _hidden(10)
    nonce = _hidden(512)
    patient = _hidden(64)
    encounter = _hidden(64)
    q = forms.CharField(required=False, max_length=200, label="Name, MRN or birth date (YYYY-MM-DD)")

    @classmethod
    def initial_for(cls, params: dict[str, str], step: str, **choices: str) -> dict[str, str]:
        """Initial data carrying `params` (an authorization request) into a page of the given step."""
        initial = {name: value for name, value in params.items() if name in AUTHORIZATION_PARAMS}
        initial["requested_scope"] = initial.pop("scope", "")
        return {**initial, STEP_FIELD: step, **choices}

    def authorization_params(self) -> dict[str, str]:
        """The carried authorization request, as its parameters were named."""
        data: dict[str, Any] = self.cleaned_data
        params = {name: data.get(name, "") for name in AUTHORIZATION_PARAMS if name != "scope"}
        params["scope"] = data.get("requested_scope", "")
        return {name: value for name, value in params.items() if value}
