"""FHIR Bulk Data Access (IG v2.0.0) `$export`: jobs, their background worker and their ndjson files."""
