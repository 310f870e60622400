"""URLs of the authorization server: SMART endpoints, then django-oauth-toolkit's under /o/.

Our authorize and token views are mounted ahead of DOT's include, at the same paths, so that
reverse("oauth2_provider:authorize") still names them.
"""

from django.urls import include, path

from smart.views.authorize import SmartAuthorizationView
from smart.views.token import SmartTokenView

app_name = "smart"

oauth_urlpatterns = [
    path("o/authorize/", SmartAuthorizationView.as_view(), name="authorize"),
    path("o/token/", SmartTokenView.as_view(), name="token"),
]

urlpatterns = [
    *oauth_urlpatterns,
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
