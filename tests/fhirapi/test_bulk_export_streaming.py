"""Bulk `$export` streaming with committed data: PostgreSQL's COPY path (SQLite's portable path elsewhere).

The rest of the suite runs inside a transaction, where the export reads through Django's own connection
(fhirapi.bulk.sources). These tests commit their data (`transaction=True`), so on PostgreSQL the worker streams
with `COPY ... TO STDOUT` on its own snapshot connection, and they check that the files are byte for byte the
stored JSON, split as configured, and that a cancellation mid-COPY still stops the worker.
"""

import contextlib

import pytest
from django.db import connection

from fhirapi.bulk import runner
from fhirapi.bulk.models import ExportJob
from fhirapi.bulk.runner import export_job_run
from fhirapi.bulk.services import job_dir
from fhirapi.bulk.sources import CopyRowSource, QuerysetRowSource
from fhirapi.models import Resource
from tests.conftest import FHIRClient, observation, patient, put_resource
from tests.fhirapi.test_bulk_export import (
    FHIR_BASE,
    _backend_application,
    exported,
    job_of,
    kick_off,
    run_export,
    status,
)

pytestmark = pytest.mark.django_db(transaction=True)

ON_POSTGRESQL = connection.vendor == "postgresql"
EXPECTED_SOURCE = CopyRowSource if ON_POSTGRESQL else QuerysetRowSource

# Every byte COPY's text format escapes or passes through, as JSON text of the store: backslashes (as in
# JSON's own escapes), quotes, tab/newline/CR (escaped by JSON), non-ASCII in all UTF-8 lengths, U+2028, DEL.
TRICKY = (
    'Back\\slash \\\\ "quoted" \\"x\\" é ñ 中文 😀 tab\tnewline\nCR\r DEL\x7f LS\u2028 NEL\u0085 %s %% \\N'
)


@pytest.fixture(autouse=True)
def bulk_settings(settings, tmp_path):
    settings.FHIRAPI = {**settings.FHIRAPI, "BASE_URL": FHIR_BASE, "BULK_DIR": str(tmp_path / "bulk")}


@pytest.fixture
def bulk(mint_token):
    backend = _backend_application("Backend", jwks=None)
    return lambda scope="system/*.rs", **context: FHIRClient(mint_token(scope, app=backend, **context))


@pytest.fixture
def sources(monkeypatch):
    """The classes of the row sources the worker read from, in order."""
    used = []
    real = runner.row_source

    @contextlib.contextmanager
    def recording():
        with real() as source:
            used.append(type(source))
            yield source

    monkeypatch.setattr(runner, "row_source", recording)
    return used


@pytest.fixture
def data():
    for pid in ("p1", "p2", "p3"):
        put_resource(patient(pid, family=f"{TRICKY} {pid}"))
    for n in range(1, 7):
        put_resource(observation(f"o{n}", f"p{n % 3 + 1}", category="laboratory" if n % 2 else "vital-signs"))
    put_resource(
        {
            "resourceType": "Group", "id": "g1", "type": "person", "actual": True,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}],
        }
    )  # fmt: skip


def files_of(client: FHIRClient, manifest: dict) -> dict[str, bytes]:
    """type -> the bytes of its output files, concatenated in manifest order (no parsing)."""
    found: dict[str, bytes] = {}
    for entry in manifest["output"]:
        response = client.get(entry["url"].removeprefix(FHIR_BASE + "/"))
        assert response.status_code == 200, response.content
        found[entry["type"]] = found.get(entry["type"], b"") + b"".join(response.streaming_content)
    return found


def stored(resource_type: str) -> bytes:
    rows = Resource.objects.filter(resource_type=resource_type, deleted=False).order_by("pk")
    return "".join(content + "\n" for content in rows.values_list("content", flat=True)).encode()


def test_files_hold_the_stored_json_byte_for_byte(data, bulk, sources):
    manifest = run_export(bulk(), params={"_type": "Patient,Observation"})

    assert files_of(bulk(), manifest) == {"Patient": stored("Patient"), "Observation": stored("Observation")}
    assert sources == [EXPECTED_SOURCE]
    assert b"\\\\slash" in stored("Patient")  # the JSON escape that COPY doubles really is in the data


def test_text_stored_with_raw_control_characters_comes_out_as_stored(data, bulk, sources):
    # given a row written around the store, whose JSON holds raw tab, VT, FF, BS and escaped backslashes
    raw = '{"resourceType":"Patient",\t"id":"p1","name":[{"text":"a\\\\b\x0bc\x0cd\x08"}]}'
    Resource.objects.filter(resource_type="Patient", fhir_id="p1").update(content=raw)

    manifest = run_export(bulk(), params={"_type": "Patient"})

    assert files_of(bulk(), manifest) == {"Patient": stored("Patient")}
    assert (raw + "\n").encode() in stored("Patient")
    assert sources == [EXPECTED_SOURCE]


@pytest.mark.parametrize(
    ("_case", "limits", "expected"),
    [
        ("by resources", {"BULK_MAX_FILE_RESOURCES": 4, "BULK_CHUNK_SIZE": 3},
         [("Observation-1.ndjson", 4), ("Observation-2.ndjson", 2)]),
        ("by bytes, at batch granularity", {"BULK_MAX_FILE_BYTES": 1, "BULK_CHUNK_SIZE": 2},
         [("Observation-1.ndjson", 2), ("Observation-2.ndjson", 2), ("Observation-3.ndjson", 2)]),
    ],
)  # fmt: skip
def test_files_split_at_the_configured_limits(data, bulk, settings, _case, limits, expected):
    settings.FHIRAPI = {**settings.FHIRAPI, **limits}

    manifest = run_export(bulk(), params={"_type": "Observation"})

    assert [(e["url"].rsplit("/", 1)[1], e["count"]) for e in manifest["output"]] == expected
    assert files_of(bulk(), manifest) == {"Observation": stored("Observation")}


@pytest.mark.parametrize(
    ("_case", "route", "params", "expected"),
    [
        ("patient level", "Patient/$export", {"_type": "Patient,Group"},
         {"Patient": {"p1", "p2", "p3"}, "Group": {"g1"}}),
        ("group level", "Group/g1/$export", {"_type": "Observation"}, {"Observation": {"o1", "o3", "o4", "o6"}}),
        ("typeFilter", "$export", {"_type": "Observation", "_typeFilter": "Observation?category=laboratory"},
         {"Observation": {"o1", "o3", "o5"}}),
        ("since in the future", "$export", {"_since": "2999-01-01T00:00:00Z"}, {}),
    ],
)  # fmt: skip
def test_levels_and_filters(data, bulk, sources, _case, route, params, expected):
    assert exported(bulk(), run_export(bulk(), route, params)) == expected
    assert sources == [EXPECTED_SOURCE]


def test_a_patient_token_exports_only_its_compartment(data, bulk):
    client = bulk("patient/*.rs", patient="p1")

    manifest = run_export(client, "Patient/$export", {"_type": "Patient,Observation"})

    assert exported(client, manifest) == {"Patient": {"p1"}, "Observation": {"o3", "o6"}}


def test_cancel_during_the_copy_stops_the_worker(data, bulk, settings, monkeypatch, sources):
    # given a worker streaming Observations one per batch, cancelled by its client on the third heartbeat
    settings.FHIRAPI = {**settings.FHIRAPI, "BULK_CHUNK_SIZE": 1}
    client = bulk()
    job_id = job_of(kick_off(client, params={"_type": "Patient,Observation"}))
    beats = []
    real_beat = runner._beat

    def beat(job, done, *, total, force=True):
        beats.append(done)
        if len(beats) == 6:  # 3 Patients and 2 Observations written: the Observation COPY is under way
            assert client.delete(f"bulk-status/{job_id}").status_code == 202
        real_beat(job, done, total=total)

    monkeypatch.setattr(runner, "_beat", beat)

    # when it runs, then it stops at that beat, leaving no job, no files, and no open snapshot
    assert export_job_run(job_id=job_id) is False
    assert beats == [0, 1, 2, 3, 1 + 3, 2 + 3]
    assert not job_dir(job_id).exists()
    assert not ExportJob.objects.exists()
    assert status(client, job_id).status_code == 404
    assert sources == [EXPECTED_SOURCE]
    if ON_POSTGRESQL:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
            )
            assert cursor.fetchone()[0] == 0


def test_inside_a_transaction_the_worker_reads_through_its_caller(data, bulk, sources):
    # A caller holding a transaction (e.g. one that just wrote the rows) is read through, never around.
    from django.db import transaction

    with transaction.atomic():
        put_resource(patient("p-new"))
        job_id = job_of(kick_off(bulk(), params={"_type": "Patient"}))
        assert export_job_run(job_id=job_id) is True

    assert exported(bulk(), status(bulk(), job_id).json()) == {"Patient": {"p1", "p2", "p3", "p-new"}}
    assert sources == [QuerysetRowSource]


def test_a_granular_scope_that_fails_closed_exports_nothing_of_its_type(data, bulk, sources):
    # given a scope whose constraint the search engine cannot evaluate: its type reaches no resource
    client = bulk("system/Patient.rs system/Observation.rs?no-such-param=1")

    manifest = run_export(client, params={"_type": "Patient,Observation"})

    assert exported(client, manifest) == {"Patient": {"p1", "p2", "p3"}}
    assert sources == [EXPECTED_SOURCE]
