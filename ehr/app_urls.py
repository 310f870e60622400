"""URLs of the clinician EHR (namespace `ehr`)."""

app_name = "ehr"
urlpatterns: list = []
