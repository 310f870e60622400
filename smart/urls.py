"""URLs of the authorization server: SMART endpoints (namespace `smart`) and django-oauth-toolkit's under /o/.

Our authorize, token and introspection views are mounted ahead of DOT's include, at the same paths, so they
answer those paths while reverse("oauth2_provider:authorize") still names the same URL.
"""

from django.urls import include, path
from oauth2_provider.views import RevokeTokenView

from smart.views.authorize import SmartAuthorizationView
from smart.views.discovery import smart_configuration_view, style_view
from smart.views.introspect import SmartIntrospectTokenView
from smart.views.manage import connected_app_revoke_view, connected_apps_view
from smart.views.token import SmartTokenView

oauth_urlpatterns = [
    path("o/authorize/", SmartAuthorizationView.as_view(), name="authorize"),
    path("o/token/", SmartTokenView.as_view(), name="token"),
    path("o/introspect/", SmartIntrospectTokenView.as_view(), name="introspect"),
    # DOT's own view (it handles hashed token storage and our client types); named here for discovery.
    path("o/revoke_token/", RevokeTokenView.as_view(), name="revoke-token"),
]

discovery_urlpatterns = [
    # The root URLconf includes these URLs ahead of fhirapi's "fhir/", so this path wins over a FHIR read.
    path("fhir/.well-known/smart-configuration", smart_configuration_view, name="smart-configuration"),
    path("smart/style.json", style_view, name="style"),
]

management_urlpatterns = [
    path("smart/connected-apps/", connected_apps_view, name="connected-apps"),
    path(
        "smart/connected-apps/<str:client_id>/revoke/", connected_app_revoke_view, name="connected-app-revoke"
    ),
]

urlpatterns = [
    path("", include((oauth_urlpatterns + discovery_urlpatterns + management_urlpatterns, "smart"))),
    path("o/", include("oauth2_provider.urls")),
]
