"""URLs of the authorization server (namespace `smart`) and django-oauth-toolkit's endpoints under /o/."""

from django.urls import include, path

app_name = "smart"
urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
]
