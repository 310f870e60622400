"""URLs of the authorization server: SMART endpoints (namespace `smart`) and django-oauth-toolkit's under /o/.

Our authorize and token views are mounted ahead of DOT's include, at the same paths, so they answer those
paths while reverse("oauth2_provider:authorize") still names the same URL.
"""

from django.urls import include, path

from smart.views.authorize import SmartAuthorizationView
from smart.views.token import SmartTokenView

oauth_urlpatterns = [
    path("o/authorize/", SmartAuthorizationView.as_view(), name="authorize"),
    path("o/token/", SmartTokenView.as_view(), name="token"),
]

urlpatterns = [
    path("", include((oauth_urlpatterns, "smart"))),
    path("o/", include("oauth2_provider.urls")),
]
