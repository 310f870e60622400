"""Provides the SMART token endpoint: DOT's TokenView with SMART response headers and errors.

SMART App Launch 2.x app-launch.html#obtain-access-token and backend-services.html (checklist #38-#52,
#58-#63, #73-#79). Grants, client authentication and the launch context are handled by smart.validators;
this view only guards the request shape and fixes up the HTTP response: `Cache-Control: no-store` and
`Pragma: no-cache` on every answer (#40), a `WWW-Authenticate: Basic` challenge when Basic client
authentication failed (RFC 6749 §5.2), and JSON errors for what oauthlib would not catch.
"""

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from oauth2_provider.signals import app_authorized
from oauth2_provider.views import TokenView
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from smart.oauth_request import form_pairs, repeated_params, token_response
from smart.validators import SmartOAuth2Validator

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
SUPPORTED_GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})


def token_error(error: str, description: str, status: int = 400) -> HttpResponse:
    """An RFC 6749 §5.2 error response."""
    body = json.dumps({"error": error, "error_description": description})
    return HttpResponse(body, status=status, content_type="application/json")


class SmartTokenView(TokenView):
    """POST /o/token/ (SMART App Launch 2.x, app-launch.html#obtain-access-token)."""

    validator_class = SmartOAuth2Validator

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = self.refusal(request)
        response = refused or super().post(request, *args, **kwargs)
        return self.finish(request, response)

    @method_decorator(sensitive_post_parameters())  # codes, refresh tokens, secrets, assertions
    def authorization_flow_token_response(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """DOT's, without reading the new access token back when nobody listens for `app_authorized`."""
        if app_authorized.receivers:
            return super().authorization_flow_token_response(request, *args, **kwargs)
        _url, headers, body, status = self.create_token_response(request)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    def create_token_response(self, request: HttpRequest) -> tuple[str | None, dict[str, str], str, int]:
        """DOT's, with oauthlib's request made from the form Django parsed (smart.oauth_request)."""
        core = self.get_oauthlib_core()
        try:
            headers, body, status = token_response(
                core.server,
                core._get_escaped_full_path(request),  # as DOT hands it over: oauthlib parses its query
                form_pairs(request),
                core.extract_headers(request),
                core._get_extra_credentials(request),
            )
        except OAuth2Error as error:
            return None, error.headers, error.json, error.status_code
        return headers.get("Location"), headers, body, status

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """A request this endpoint refuses before oauthlib sees it (checklist #44, #45, #75; a repeated
        parameter, RFC 6749 §3.2, which DOT would reduce to its last value)."""
        if request.content_type != FORM_CONTENT_TYPE:
            return token_error("invalid_request", f"The request body must be {FORM_CONTENT_TYPE}.")
        if repeated := repeated_params(request.POST, may_repeat=frozenset({"resource"})):
            return token_error(
                "invalid_request", f"Each parameter may be given only once: {', '.join(repeated)}."
            )
        grant_type = request.POST.get("grant_type")
        if not grant_type:
            return token_error("invalid_request", "grant_type is required.")
        if grant_type not in SUPPORTED_GRANT_TYPES:
            return token_error("unsupported_grant_type", f"The grant type {grant_type!r} is not supported.")
        return None

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        if not response.get("Content-Type", "").startswith("application/json"):
            response["Content-Type"] = "application/json"
        basic = request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("basic ")
        if response.status_code == 401 and basic:
            response["WWW-Authenticate"] = 'Basic realm="token", charset="UTF-8"'
        return response
