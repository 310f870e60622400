"""Provides the FHIR REST views (FHIR R4 http.html), one thin class per URL shape."""
