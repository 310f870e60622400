"""URLs of the FHIR R4 REST API (namespace `fhirapi`)."""

app_name = "fhirapi"
urlpatterns: list = []
