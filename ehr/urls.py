"""Root URLconf: includes each app's URLs."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("smart.urls")),
    path("fhir/", include("fhirapi.urls")),
    path("", include("ehr.app_urls")),
]
