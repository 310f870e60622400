"""Provides the SMART token endpoint: DOT's TokenView with SMART response headers and errors."""

from oauth2_provider.views import TokenView


class SmartTokenView(TokenView):
    """POST /o/token/ (SMART App Launch 2.x, app-launch.html#obtain-access-token)."""
