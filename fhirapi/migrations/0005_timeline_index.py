"""TimelineIndex, filled for resources already stored from their reference and date index rows.

The backfill is the SQL form of fhirapi.indexing.timeline_values (same parameters, same conditions).
"""

import django.db.models.deletion
from django.db import migrations, models


BACKFILL = """
INSERT INTO fhirapi_timelineindex (resource_id, resource_type, reference_param, patient_id, param, low)
SELECT DISTINCT r.resource_id, r.resource_type, r.param, r.target_id, d.param, d.low
FROM fhirapi_referenceindex r
JOIN fhirapi_dateindex d ON d.resource_id = r.resource_id
WHERE r.param IN ('patient', 'subject') AND r.target_type = 'Patient' AND r.target_id <> ''
  AND d.low IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("fhirapi", "0004_search_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="TimelineIndex",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("resource_type", models.CharField(max_length=64)),
                ("param", models.CharField(max_length=64)),
                ("reference_param", models.CharField(max_length=64)),
                ("patient_id", models.CharField(max_length=64)),
                ("low", models.DateTimeField()),
                (
                    "resource",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="fhirapi.resource"
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["patient_id", "resource_type", "reference_param", "param", "low", "resource"],
                        name="fhir_timeline",
                    )
                ],
            },
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
