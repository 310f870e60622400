"""Provides the SMART authorization endpoint: DOT's AuthorizationView with launch, aud, pickers and consent."""

from oauth2_provider.views import AuthorizationView


class SmartAuthorizationView(AuthorizationView):
    """GET and POST /o/authorize/ (SMART App Launch 2.x, app-launch.html#request-4)."""
