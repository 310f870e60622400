"""FHIR Bulk Data `$export` end to end: kick-off, background run, status, manifest, downloads, limits."""

import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from oauth2_provider.models import get_application_model

from fhirapi.bulk import runner
from fhirapi.bulk.models import ExportFile, ExportJob
from fhirapi.bulk.runner import export_job_run
from fhirapi.bulk.services import export_jobs_cleanup, job_dir
from tests.conftest import FHIRClient, observation, patient, put_resource

Application = get_application_model()

ASYNC = {"Prefer": "respond-async"}
FHIR_BASE = "http://127.0.0.1:8000/fhir"
TOKEN_URL = "http://127.0.0.1:8000/o/token/"  # the token endpoint as discovery publishes it
FORM = "application/x-www-form-urlencoded"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LAB = "laboratory"
VITALS = "vital-signs"


@pytest.fixture(autouse=True)
def bulk_settings(settings, tmp_path):
    settings.FHIRAPI = {**settings.FHIRAPI, "BASE_URL": FHIR_BASE, "BULK_DIR": str(tmp_path / "bulk")}
    return settings


@pytest.fixture
def data(db):
    """Three patients with labs and vitals, a Condition, a Practitioner, and Group g1 = {p1, p2}."""
    for pid in ("p1", "p2", "p3"):
        put_resource(patient(pid))
    put_resource(observation("o1-lab", "p1", category=LAB))
    put_resource(observation("o1-vit", "p1", category=VITALS))
    put_resource(observation("o2-lab", "p2", category=LAB))
    put_resource(observation("o2-vit", "p2", category=VITALS))
    put_resource(observation("o3-lab", "p3", category=LAB))
    put_resource(
        {
            "resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        }
    )  # fmt: skip
    put_resource({"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Who"}]})
    put_resource(
        {
            "resourceType": "Group", "id": "g1", "type": "person", "actual": True,
            "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}}],
        }
    )  # fmt: skip


@pytest.fixture
def backend_app(db):
    return _backend_application("Backend", jwks=None)


@pytest.fixture
def bulk(mint_token, backend_app):
    """bulk(scope="system/*.rs", **context) -> FHIRClient with a token of the backend client."""

    def make(scope: str = "system/*.rs", *, app=None, **context) -> FHIRClient:
        return FHIRClient(mint_token(scope, app=app or backend_app, **context))

    return make


def _backend_application(name, *, jwks):
    return Application.objects.create(
        name=name, client_type="confidential", authorization_grant_type="client-credentials",
        smart_client_type="backend", token_endpoint_auth_method="private_key_jwt", client_jwks=jwks,
        allowed_scopes="system/*.rs",
    )  # fmt: skip


def kick_off(client: FHIRClient, route: str = "$export", params=None, headers=None):
    return client.get(route, params, headers={**ASYNC, **(headers or {})})


def job_of(response) -> str:
    assert response.status_code == 202, response.content
    return response["Content-Location"].rsplit("/", 1)[1]


def status(client: FHIRClient, job_id: str):
    return client.get(f"bulk-status/{job_id}")


def run_export(client: FHIRClient, route: str = "$export", params=None) -> dict:
    """Kick off, run the worker in-process, and return the manifest (status 200)."""
    job_id = job_of(kick_off(client, route, params))
    assert export_job_run(job_id=job_id) is True
    response = status(client, job_id)
    assert response.status_code == 200, response.content
    return response.json()


def download(client: FHIRClient, url: str) -> list[dict]:
    """The resources of one file, each line checked as valid FHIR (fhir.resources R4B)."""
    response = client.get(url.removeprefix(FHIR_BASE + "/"), headers={"Accept": "application/fhir+ndjson"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/fhir+ndjson"
    text = b"".join(response.streaming_content).decode()
    assert text.endswith("\n")
    # ndjson lines end at "\n" only: JSON strings may hold U+2028 or U+0085, which splitlines() would cut at
    resources = [json.loads(line) for line in text.removesuffix("\n").split("\n")]
    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resources


def exported(client: FHIRClient, manifest: dict) -> dict[str, set[str]]:
    """type -> ids over every output file, checking each file's count and type against the manifest."""
    found: dict[str, set[str]] = {}
    for entry in manifest["output"]:
        resources = download(client, entry["url"])
        assert len(resources) == entry["count"]
        assert {r["resourceType"] for r in resources} == {entry["type"]}
        found.setdefault(entry["type"], set()).update(r["id"] for r in resources)
    return found


EVERYTHING = {
    "Patient": {"p1", "p2", "p3"},
    "Observation": {"o1-lab", "o1-vit", "o2-lab", "o2-vit", "o3-lab"},
    "Condition": {"c1"},
    "Practitioner": {"pr1"},
    "Group": {"g1"},
}


# ---------------------------------------------------------------- the three levels, end to end


def test_system_export_with_a_real_rs384_backend_token(data, client, settings):
    # given a backend client registered with its RS384 public key, and a token from POST /o/token/
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER, "OAUTH2_VALIDATOR_CLASS": "smart.validators.SmartOAuth2Validator"
    }  # fmt: skip
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "RS384"}
    app = _backend_application("Real backend", jwks={"keys": [jwk]})
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": app.client_id, "sub": app.client_id, "aud": TOKEN_URL, "exp": now + 300,
         "jti": uuid.uuid4().hex},
        key, algorithm="RS384", headers={"kid": "k1", "typ": "JWT"},
    )  # fmt: skip
    body = urlencode({
        "grant_type": "client_credentials", "scope": "system/*.rs",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
    })  # fmt: skip
    response = client.post("/o/token/", body, content_type=FORM, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content
    backend = FHIRClient(response.json()["access_token"])

    # when it exports the whole system
    manifest = run_export(backend)

    # then every stored resource comes back once, in files the same token can download
    assert exported(backend, manifest) == EVERYTHING
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"] == f"{FHIR_BASE}/$export"
    assert manifest["error"] == []
    assert manifest["transactionTime"].endswith("Z")


def test_patient_export_covers_the_patient_compartments(data, bulk):
    manifest = run_export(bulk(), "Patient/$export")

    found = exported(bulk(), manifest)

    # Practitioner is no compartment's; the Group is in its members' compartments
    assert found == {k: v for k, v in EVERYTHING.items() if k != "Practitioner"}


def test_group_export_covers_its_members_only(data, bulk):
    manifest = run_export(bulk(), "Group/g1/$export", {"_type": "Patient,Observation,Condition"})

    assert exported(bulk(), manifest) == {
        "Patient": {"p1", "p2"},
        "Observation": {"o1-lab", "o1-vit", "o2-lab", "o2-vit"},
        "Condition": {"c1"},
    }
    assert manifest["request"] == f"{FHIR_BASE}/Group/g1/$export?_type=Patient%2CObservation%2CCondition"


def test_post_kick_off_takes_a_parameters_resource(data, bulk):
    client = bulk()
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "Observation"},
            {"name": "_outputFormat", "valueString": "application/ndjson"},
            {"name": "_typeFilter", "valueString": "Observation?category=laboratory"},
        ],
    }

    response = client.post("Patient/$export", body, headers=ASYNC)
    job_id = job_of(response)
    export_job_run(job_id=job_id)

    manifest = status(client, job_id).json()
    assert exported(client, manifest) == {"Observation": {"o1-lab", "o2-lab", "o3-lab"}}
    assert manifest["request"] == f"{FHIR_BASE}/Patient/$export"


@pytest.mark.parametrize(
    ("_case", "params", "expected"),
    [
        ("type", {"_type": "Condition,Practitioner"}, {"Condition": {"c1"}, "Practitioner": {"pr1"}}),
        ("repeated type", {"_type": ["Condition", "Practitioner"]},
         {"Condition": {"c1"}, "Practitioner": {"pr1"}}),
        (
            "typeFilter",
            {"_type": "Observation", "_typeFilter": "Observation?category=laboratory"},
            {"Observation": {"o1-lab", "o2-lab", "o3-lab"}},
        ),
        (
            "typeFilters of one type are OR-ed",
            {"_type": "Observation",
             "_typeFilter":
                 "Observation?category=laboratory&subject=Patient/p1,Observation?subject=Patient/p2"},
            {"Observation": {"o1-lab", "o2-lab", "o2-vit"}},
        ),
        (
            "typeFilter with an OR-list inside",
            {"_type": "Observation,Patient", "_typeFilter": ["Observation?subject=Patient/p1,Patient/p3"]},
            {"Observation": {"o1-lab", "o1-vit", "o3-lab"}, "Patient": {"p1", "p2", "p3"}},
        ),
        ("typeFilter without _type", {"_typeFilter": "Patient?_id=p2"}, {**EVERYTHING, "Patient": {"p2"}}),
    ],
)  # fmt: skip
def test_type_and_type_filter_select_exactly(data, bulk, _case, params, expected):
    assert exported(bulk(), run_export(bulk(), params=params)) == expected


def test_since_selects_what_changed_at_or_after_it(data, bulk):
    # given p2 and o3-lab changed after `since`
    since = timezone.now()
    put_resource(patient("p2", family="Changed"))
    put_resource(observation("o3-lab", "p3", category=LAB, value=80))

    params = {"_since": since.isoformat().replace("+00:00", "Z")}
    manifest = run_export(bulk(), params=params)

    assert exported(bulk(), manifest) == {"Patient": {"p2"}, "Observation": {"o3-lab"}}


def test_since_with_an_unencoded_plus_offset_is_read_as_meant(data, bulk):
    # given a client that did not encode the `+` of the offset (it arrives as a space)
    client = bulk()

    response = client.client.get(
        "/fhir/$export?_since=2999-01-01T00:00:00+00:00", HTTP_ACCEPT="application/fhir+json",
        HTTP_PREFER="respond-async", HTTP_AUTHORIZATION=f"Bearer {client.token}",
    )  # fmt: skip

    assert response.status_code == 202
    assert ExportJob.objects.get().since.year == 2999


def test_files_split_at_the_configured_size(data, bulk, settings):
    settings.FHIRAPI = {**settings.FHIRAPI, "BULK_MAX_FILE_RESOURCES": 2}

    manifest = run_export(bulk(), params={"_type": "Observation"})

    assert [(e["url"].rsplit("/", 1)[1], e["count"]) for e in manifest["output"]] == [
        ("Observation-1.ndjson", 2), ("Observation-2.ndjson", 2), ("Observation-3.ndjson", 1),
    ]  # fmt: skip
    assert exported(bulk(), manifest) == {"Observation": EVERYTHING["Observation"]}


def test_lenient_type_filter_reports_what_it_ignored_in_the_error_file(data, bulk):
    client = bulk()
    params = {"_type": "Observation", "_typeFilter": "Observation?category=laboratory&_count=1"}
    job_id = job_of(kick_off(client, params=params, headers={"Prefer": "respond-async, handling=lenient"}))
    export_job_run(job_id=job_id)

    manifest = status(client, job_id).json()

    assert exported(client, manifest) == {"Observation": {"o1-lab", "o2-lab", "o3-lab"}}
    [error_file] = manifest["error"]
    assert error_file["type"] == "OperationOutcome"
    [outcome] = download(client, error_file["url"])
    assert outcome["issue"][0]["severity"] == "warning"
    assert "_count" in outcome["issue"][0]["diagnostics"]


# ---------------------------------------------------------------- kick-off refusals


@pytest.mark.parametrize(
    ("_case", "route", "params", "headers", "status_code", "expression"),
    [
        ("no Prefer", "$export", {}, {"Prefer": ""}, 400, "Prefer"),
        ("no Accept", "$export", {}, {"Accept": "application/json"}, 400, "Accept"),
        ("bad _outputFormat", "$export", {"_outputFormat": "text/csv"}, {}, 400, "_outputFormat"),
        ("unknown _type", "$export", {"_type": "Observation,Spaceship"}, {}, 400, "_type"),
        ("bad _since", "$export", {"_since": "2024-01-01"}, {}, 400, "_since"),
        ("patient parameter", "Patient/$export", {"patient": "Patient/p1"}, {}, 400, "patient"),
        ("includeAssociatedData", "$export", {"includeAssociatedData": "LatestProvenanceResources"}, {}, 400,
         "includeAssociatedData"),
        ("unknown parameter", "$export", {"_foo": "1"}, {}, 400, "_foo"),
        ("typeFilter on an unknown param", "$export", {"_typeFilter": "Observation?nope=1"}, {}, 400,
         "_typeFilter"),
        ("typeFilter with a bad value", "$export", {"_typeFilter": "Observation?date=yesterday"}, {}, 400,
         "_typeFilter"),
        ("typeFilter outside _type", "$export", {"_type": "Patient", "_typeFilter": "Observation?code=1"}, {},
         400, "_typeFilter"),
        ("typeFilter not a query", "$export", {"_typeFilter": "category=laboratory"}, {}, 400, "_typeFilter"),
        ("non-compartment type at patient level", "Patient/$export", {"_type": "Practitioner"}, {}, 400,
         "_type"),
        ("unknown group", "Group/nope/$export", {}, {}, 404, None),
    ],
)  # fmt: skip
def test_kick_off_refusals(data, bulk, _case, route, params, headers, status_code, expression):
    response = kick_off(bulk(), route, params, headers)

    assert response.status_code == status_code, response.content
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0].get("expression", [None]) == [expression]
    assert not ExportJob.objects.exists()


def test_kick_off_without_a_token_is_401(data, fhir):
    assert kick_off(fhir(None)).status_code == 401


def test_types_outside_the_scopes_are_left_out_or_403(data, bulk):
    client = bulk("system/Patient.rs system/Observation.rs")

    manifest = run_export(client, params={"_type": "Patient,Condition"})

    assert exported(client, manifest) == {"Patient": {"p1", "p2", "p3"}}
    [outcome] = download(client, manifest["error"][0]["url"])
    assert "Condition" in outcome["issue"][0]["diagnostics"]
    assert kick_off(client, params={"_type": "Condition"}).status_code == 403


# ---------------------------------------------------------------- status, cancel, ownership, expiry


def test_status_reports_progress_while_running(data, bulk):
    client = bulk()
    job_id = job_of(kick_off(client))

    response = status(client, job_id)
    assert (response.status_code, response["X-Progress"], response["Retry-After"]) == (202, "queued", "5")

    ExportJob.objects.filter(pk=job_id).update(
        status=ExportJob.Status.IN_PROGRESS, progress_done=9000, progress_total=20000, attempt=1
    )
    response = status(client, job_id)
    assert (response.status_code, response["X-Progress"]) == (202, "45% (9000/20000 resources)")


def test_cancel_deletes_the_job_and_its_files(data, bulk):
    client = bulk()
    manifest_job = job_of(kick_off(client))
    export_job_run(job_id=manifest_job)
    assert any(job_dir(manifest_job).rglob("*.ndjson"))

    response = client.delete(f"bulk-status/{manifest_job}")

    assert response.status_code == 202
    assert not job_dir(manifest_job).exists()
    assert status(client, manifest_job).status_code == 404
    assert not ExportFile.objects.exists()


def test_cancel_while_running_stops_the_worker_and_leaves_no_files(data, bulk, settings, monkeypatch):
    # given a worker that is cancelled between two files
    settings.FHIRAPI = {**settings.FHIRAPI, "BULK_MAX_FILE_RESOURCES": 1, "BULK_CHUNK_SIZE": 1}
    client = bulk()
    job_id = job_of(kick_off(client, params={"_type": "Observation"}))
    beats = []
    real_beat = runner._beat

    def beat(job, done, *, total, force=True):
        beats.append(done)
        if len(beats) == 3:
            client.delete(f"bulk-status/{job_id}")
        real_beat(job, done, total=total)

    monkeypatch.setattr(runner, "_beat", beat)

    # when it runs, then it stops without completing and its files are gone
    assert export_job_run(job_id=job_id) is False
    assert not job_dir(job_id).exists()
    assert not ExportJob.objects.exists()


def test_other_clients_and_unknown_jobs_get_404(data, bulk):
    owner = bulk()
    job_id = job_of(kick_off(owner))
    export_job_run(job_id=job_id)
    file_path = status(owner, job_id).json()["output"][0]["url"].removeprefix(FHIR_BASE + "/")
    stranger = bulk(app=_backend_application("Other backend", jwks=None))

    assert status(stranger, job_id).status_code == 404
    assert stranger.get(file_path).status_code == 404
    assert stranger.delete(f"bulk-status/{job_id}").status_code == 404
    assert status(owner, str(uuid.uuid4())).status_code == 404
    assert owner.get(file_path.replace(".ndjson", "0.ndjson")).status_code == 404
    assert status(owner, job_id).status_code == 200  # the owner's job is untouched


def test_expired_jobs_are_404_and_swept_with_their_files(data, bulk):
    client = bulk()
    job_id = job_of(kick_off(client))
    export_job_run(job_id=job_id)
    ExportJob.objects.filter(pk=job_id).update(expires=timezone.now() - timedelta(seconds=1))

    assert status(client, job_id).status_code == 404
    assert export_jobs_cleanup() == 1
    assert not job_dir(job_id).exists()
    assert not ExportJob.objects.exists()


def test_a_token_that_lost_the_scope_gets_403(data, bulk):
    job_id = job_of(kick_off(bulk(), params={"_type": "Patient,Observation"}))
    export_job_run(job_id=job_id)
    manifest = status(bulk(), job_id).json()
    narrower = bulk("system/Patient.rs")

    assert status(narrower, job_id).status_code == 403
    urls = {e["type"]: e["url"].removeprefix(FHIR_BASE + "/") for e in manifest["output"]}
    assert narrower.get(urls["Observation"]).status_code == 403
    assert narrower.get(urls["Patient"]).status_code == 200


def test_a_failed_job_answers_500_with_an_operation_outcome(data, bulk, monkeypatch):
    client = bulk()
    job_id = job_of(kick_off(client))

    def broken(job, resource_type):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner, "export_queryset", broken)
    with pytest.raises(RuntimeError):
        export_job_run(job_id=job_id)

    response = status(client, job_id)
    assert response.status_code == 500
    assert response.json()["issue"][0] == {
        "severity": "error", "code": "exception", "diagnostics": "The export failed on the server."
    }  # fmt: skip
    assert not job_dir(job_id).exists()


# ---------------------------------------------------------------- grant limits of patient/ and user/ tokens


@pytest.mark.parametrize(
    ("_case", "route"),
    [("patient level", "Patient/$export"), ("group level", "Group/g1/$export"), ("system level", "$export")],
)
def test_patient_scoped_token_reaches_only_its_patient(data, bulk, _case, route):
    client = bulk("patient/*.rs", patient="p1")

    manifest = run_export(client, route, {"_type": "Patient,Observation,Condition"})

    assert exported(client, manifest) == {
        "Patient": {"p1"}, "Observation": {"o1-lab", "o1-vit"}, "Condition": {"c1"},
    }  # fmt: skip


def test_group_the_patient_is_not_in_is_404_for_a_patient_token(data, bulk):
    put_resource({"resourceType": "Group", "id": "g3", "type": "person", "actual": True,
                  "member": [{"entity": {"reference": "Patient/p3"}}]})  # fmt: skip

    assert kick_off(bulk("patient/*.rs", patient="p1"), "Group/g3/$export").status_code == 404


def test_another_patients_token_of_the_same_client_cannot_read_the_export(data, bulk):
    job_id = job_of(kick_off(bulk("patient/*.rs", patient="p1"), "Patient/$export"))
    export_job_run(job_id=job_id)
    manifest = status(bulk("patient/*.rs", patient="p1"), job_id).json()
    other = bulk("patient/*.rs", patient="p2")

    assert status(other, job_id).status_code == 403
    for entry in manifest["output"]:
        assert other.get(entry["url"].removeprefix(FHIR_BASE + "/")).status_code == 403


# ---------------------------------------------------------------- restart safety


class Crash(BaseException):
    """A worker process dying mid-export (not an error the worker could catch and report)."""


def test_an_interrupted_job_is_not_complete_and_reruns_cleanly(data, bulk, settings, monkeypatch):
    # given a worker that dies after writing some files
    settings.FHIRAPI = {**settings.FHIRAPI, "BULK_MAX_FILE_RESOURCES": 1}
    client = bulk()
    job_id = job_of(kick_off(client))
    real_complete = runner._complete

    def crash(job, done):
        raise Crash

    monkeypatch.setattr(runner, "_complete", crash)
    with pytest.raises(Crash):
        export_job_run(job_id=job_id)
    monkeypatch.setattr(runner, "_complete", real_complete)

    # then the job is not reported complete, though its files were written
    assert status(client, job_id).status_code == 202
    assert ExportFile.objects.filter(job_id=job_id, attempt=1).count() == 11

    # when it goes stale, polling (or the sweep) queues it again and a worker restarts it from scratch
    ExportJob.objects.filter(pk=job_id).update(heartbeat=timezone.now() - timedelta(hours=1))
    export_jobs_cleanup()
    assert export_job_run(job_id=job_id) is False  # a plain duplicate delivery does not steal a running job
    assert export_job_run(job_id=job_id, restart_attempt=1) is True

    # then the manifest lists the second attempt's files only, each once
    manifest = status(client, job_id).json()
    assert exported(client, manifest) == EVERYTHING
    assert set(ExportFile.objects.filter(job_id=job_id).values_list("attempt", flat=True)) == {2}
    assert [p.name for p in job_dir(job_id).iterdir()] == ["2"]


def test_a_worker_restarted_elsewhere_stops_writing(data, bulk, settings):
    job_id = job_of(kick_off(bulk()))
    ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.IN_PROGRESS, attempt=1)
    job = ExportJob.objects.get(pk=job_id)
    ExportJob.objects.filter(pk=job_id).update(attempt=2)  # another worker took the job over

    with pytest.raises(runner.JobSuperseded):
        runner._beat(job, 10, total=20)


def test_a_job_interrupted_too_often_fails(data, bulk, settings):
    client = bulk()
    job_id = job_of(kick_off(client))
    ExportJob.objects.filter(pk=job_id).update(status=ExportJob.Status.IN_PROGRESS, attempt=3)

    assert export_job_run(job_id=job_id, restart_attempt=3) is False

    response = status(client, job_id)
    assert response.status_code == 500
    assert "interrupted 3 times" in response.json()["issue"][0]["diagnostics"]


# ---------------------------------------------------------------- the task queue


def test_kick_off_queues_the_task_after_commit(data, bulk, settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    client = bulk()

    with django_capture_on_commit_callbacks(execute=True):
        job_id = job_of(kick_off(client, params={"_type": "Patient"}))

    assert exported(client, status(client, job_id).json()) == {"Patient": {"p1", "p2", "p3"}}
