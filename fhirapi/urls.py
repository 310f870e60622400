"""URLs of the FHIR R4 REST API (namespace `fhirapi`), mounted at /fhir/."""

from django.urls import path, re_path

from fhirapi.bulk.urls import bulk_urlpatterns
from fhirapi.views.resources import (
    InstanceHistoryView,
    InstanceView,
    TypeHistoryView,
    TypeSearchView,
    TypeView,
    VersionView,
)
from fhirapi.views.system import CapabilityStatementView, SystemHistoryView, SystemView

app_name = "fhirapi"

TYPE = r"(?P<resource_type>[A-Z][A-Za-z]{1,63})"
ID = r"(?P<resource_id>[A-Za-z0-9\-.]{1,64})"

urlpatterns = [
    *bulk_urlpatterns,  # $export routes go before the generic [type]/[id] patterns
    path("", SystemView.as_view(), name="system"),
    path("metadata", CapabilityStatementView.as_view(), name="metadata"),
    path("_history", SystemHistoryView.as_view(), name="system-history"),
    re_path(rf"^{TYPE}/?$", TypeView.as_view(), name="type"),
    re_path(rf"^{TYPE}/_search/?$", TypeSearchView.as_view(), name="type-search"),
    re_path(rf"^{TYPE}/_history/?$", TypeHistoryView.as_view(), name="type-history"),
    re_path(rf"^{TYPE}/{ID}/?$", InstanceView.as_view(), name="instance"),
    re_path(rf"^{TYPE}/{ID}/_history/?$", InstanceHistoryView.as_view(), name="instance-history"),
    re_path(rf"^{TYPE}/{ID}/_history/(?P<version_id>[^/]+)/?$", VersionView.as_view(), name="version"),
]
