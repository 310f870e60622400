"""Demo data for the EHR: a deterministic synthetic population of FHIR R4 resources (see ``population``)."""
