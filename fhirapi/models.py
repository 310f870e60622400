"""Provides the resource store's tables: current resources, immutable versions, and typed search indexes.

One table holds every resource type (HAPI FHIR JPA's shape). The JSON is kept as text, exactly as served, so a
read streams stored bytes without parsing. Search values are extracted at write time into one index table per
search-parameter type, so that search runs as indexed SQL. Only fhirapi.store writes these tables.
"""

from django.db import models


class Resource(models.Model):
    """The current version of one resource (a deleted resource keeps its row with `deleted=True`)."""

    resource_type = models.CharField(max_length=64)
    fhir_id = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField(default=1)
    last_updated = models.DateTimeField()
    deleted = models.BooleanField(default=False)
    content = models.TextField()  # the resource JSON with meta.versionId/lastUpdated, served verbatim

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "fhir_id"], name="fhir_resource_type_id")
        ]
        indexes = [
            models.Index(fields=["resource_type", "last_updated"], name="fhir_res_type_updated"),
            models.Index(fields=["last_updated"], name="fhir_res_updated"),
            # Deleted rows keep their index rows; this small index makes "not deleted" a cheap anti-join.
            models.Index(fields=["id"], condition=models.Q(deleted=True), name="fhir_res_deleted"),
            # `Patient?_count=10` walks this instead of the primary key through every other type.
            models.Index(
                fields=["resource_type", "id"], condition=models.Q(deleted=False), name="fhir_res_type_live"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.fhir_id}"


class ResourceVersion(models.Model):
    """One immutable version of a resource, kept for vread and history."""

    class Method(models.TextChoices):
        CREATE = "POST"
        UPDATE = "PUT"
        DELETE = "DELETE"

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="versions")
    resource_type = models.CharField(max_length=64)
    version_id = models.PositiveIntegerField()
    last_updated = models.DateTimeField()
    method = models.CharField(max_length=8, choices=Method.choices)
    content = models.TextField(blank=True)  # empty for a delete

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource", "version_id"], name="fhir_version_unique"),
        ]
        indexes = [
            models.Index(fields=["resource_type", "last_updated"], name="fhir_ver_type_updated"),
            models.Index(fields=["last_updated"], name="fhir_ver_updated"),
        ]


class CompartmentMembership(models.Model):
    """The Patient compartments a resource belongs to (R4 compartmentdefinition-patient)."""

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    patient_id = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["patient_id", "resource"], name="fhir_cmp_patient")]


class _SearchIndex(models.Model):
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="+")
    resource_type = models.CharField(max_length=64)
    param = models.CharField(max_length=64)

    class Meta:
        abstract = True


class TokenIndex(_SearchIndex):
    system = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=255)

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "code", "system"], name="fhir_tok_lookup"),
            models.Index(
                fields=["resource", "param", "code", "system", "resource_type"], name="fhir_tok_res"
            ),
        ]


class StringIndex(_SearchIndex):
    normalized = models.CharField(max_length=255)  # lower-case, accents removed: default and :contains
    exact = models.CharField(max_length=255)  # as written: :exact

    class Meta:
        indexes = [
            models.Index(
                fields=["resource_type", "param", "normalized"],
                name="fhir_str_lookup",
                opclasses=["varchar_pattern_ops"] * 3,  # prefix LIKE under any collation (PostgreSQL)
            ),
            models.Index(fields=["resource", "param"], name="fhir_str_res"),
        ]


class DateIndex(_SearchIndex):
    low = models.DateTimeField(null=True)  # inclusive start of the value's range; null = unbounded
    high = models.DateTimeField(null=True)  # inclusive end of the value's range; null = unbounded

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "low"], name="fhir_date_lookup"),
            models.Index(fields=["resource", "param", "low", "high", "resource_type"], name="fhir_date_res"),
        ]


class TimelineIndex(_SearchIndex):
    """A patient's resources by date: one row per (reference to a Patient, date value) pair of a resource.

    `Observation?patient=X&category=...&_sort=-date&_count=10` must not visit every Observation of a patient
    who has thousands: walking this index backwards from the newest date reads the page's rows and stops.
    Rows mirror the ReferenceIndex rows of the `patient`/`subject` parameters whose target is a Patient
    (relative or absolute, as a reference search matches them) crossed with the DateIndex rows that have a
    start; a resource with neither is simply not here (fhirapi.query falls back to the general plan).
    """

    reference_param = models.CharField(max_length=64)  # `patient` or `subject`
    patient_id = models.CharField(max_length=64)
    low = models.DateTimeField()  # DateIndex.low of `param`, never NULL here

    class Meta:
        indexes = [
            models.Index(
                fields=["patient_id", "resource_type", "reference_param", "param", "low", "resource"],
                name="fhir_timeline",
            ),
        ]


class ReferenceIndex(_SearchIndex):
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    url = models.CharField(max_length=512, blank=True)  # absolute or canonical references

    class Meta:
        indexes = [
            models.Index(
                fields=["param", "target_id", "target_type", "resource_type", "resource"],
                name="fhir_ref_lookup",
            ),
            models.Index(fields=["target_id", "target_type"], name="fhir_ref_target"),
            models.Index(fields=["resource", "param"], name="fhir_ref_res"),
            models.Index(fields=["url"], name="fhir_ref_url"),
        ]


class QuantityIndex(_SearchIndex):
    value = models.DecimalField(max_digits=30, decimal_places=10)
    system = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=64, blank=True)
    unit = models.CharField(max_length=64, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "value"], name="fhir_qty_lookup"),
            models.Index(fields=["resource", "param"], name="fhir_qty_res"),
        ]


class NumberIndex(_SearchIndex):
    value = models.DecimalField(max_digits=30, decimal_places=10)

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "value"], name="fhir_num_lookup"),
            models.Index(fields=["resource", "param"], name="fhir_num_res"),
        ]


class UriIndex(_SearchIndex):
    uri = models.CharField(max_length=512)

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "param", "uri"], name="fhir_uri_lookup"),
            models.Index(fields=["resource", "param"], name="fhir_uri_res"),
        ]


# Bulk export jobs live in their own module; importing them here registers them with the fhirapi app.
from fhirapi.bulk.models import *  # noqa: E402, F403
