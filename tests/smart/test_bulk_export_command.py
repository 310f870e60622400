"""`manage.py smart_bulk_export`: an in-process export as a registered backend client, into a folder."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from oauth2_provider.models import get_application_model

from fhirapi.bulk.models import ExportJob
from tests.conftest import observation, patient, put_resource

Application = get_application_model()


@pytest.fixture(autouse=True)
def bulk_dir(settings, tmp_path):
    settings.FHIRAPI = {**settings.FHIRAPI, "BULK_DIR": str(tmp_path / "bulk")}


@pytest.fixture
def data(db):
    for pid in ("p1", "p2"):
        put_resource(patient(pid))
        put_resource(observation(f"o-{pid}", pid, category="laboratory"))
    put_resource(observation("o-vitals", "p1", category="vital-signs"))
    put_resource(
        {
            "resourceType": "Group", "id": "g1", "type": "person", "actual": True,
            "member": [{"entity": {"reference": "Patient/p2"}}],
        }
    )  # fmt: skip


def _client(
    name="Exporter", *, smart_client_type="backend", scopes="system/Patient.rs system/Observation.rs"
):
    return Application.objects.create(
        name=name, client_type="confidential", authorization_grant_type="client-credentials",
        smart_client_type=smart_client_type, token_endpoint_auth_method="private_key_jwt",
        allowed_scopes=scopes,
    )  # fmt: skip


def export(*args: str) -> str:
    out = StringIO()
    call_command("smart_bulk_export", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def read(folder) -> tuple[dict, dict[str, set[str]]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    found: dict[str, set[str]] = {}
    for entry in manifest["output"]:
        lines = (folder / entry["url"]).read_text().splitlines()
        assert len(lines) == entry["count"]
        found.setdefault(entry["type"], set()).update(json.loads(line)["id"] for line in lines)
    return manifest, found


def test_exports_what_the_clients_system_scopes_allow_into_the_folder(data, tmp_path):
    # given a backend client registered for Patient and Observation only (and a patient/ rule that is ignored)
    client = _client(scopes="system/Patient.rs system/Observation.rs patient/*.rs")

    output = export("--client", client.client_id, "--out", str(tmp_path / "out"))

    manifest, found = read(tmp_path / "out")
    assert found == {"Patient": {"p1", "p2"}, "Observation": {"o-p1", "o-p2", "o-vitals"}}
    assert manifest["requiresAccessToken"] is True
    assert "5 resources in 2 files" in output
    assert not ExportJob.objects.exists()  # the files are handed over; nothing is left to serve or expire


def test_type_since_and_type_filter_options(data, tmp_path):
    client = _client()

    export(
        "--client", client.client_id, "--out", str(tmp_path / "out"), "--type", "Observation",
        "--since", "2000-01-01T00:00:00Z", "--type-filter", "Observation?category=laboratory",
    )  # fmt: skip

    assert read(tmp_path / "out")[1] == {"Observation": {"o-p1", "o-p2"}}


def test_group_export(data, tmp_path):
    client = _client(scopes="system/*.rs")

    export("--client", client.client_id, "--out", str(tmp_path / "out"), "--group", "g1", "--type", "Patient")

    assert read(tmp_path / "out")[1] == {"Patient": {"p2"}}


@pytest.mark.parametrize(
    ("_case", "make_client", "extra", "message"),
    [
        ("unknown client", None, [], "No enabled client"),
        ("not a backend client", {"smart_client_type": "confidential"}, [], "is not a backend service"),
        ("no system scopes", {"scopes": "patient/*.rs"}, [], "has no system/ scopes"),
        ("unknown type", {}, ["--type", "Spaceship"], "does not export Spaceship"),
        ("type outside the scopes", {}, ["--type", "Condition"], "do not allow searching"),
        ("unknown group", {"scopes": "system/*.rs"}, ["--group", "nope"], "Group/nope is not known"),
    ],
)
def test_refusals(data, tmp_path, _case, make_client, extra, message):
    client_id = _client(**make_client).client_id if make_client is not None else "nobody"

    with pytest.raises(CommandError, match=message):
        export("--client", client_id, "--out", str(tmp_path / "out"), *extra)

    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="compares with PostgreSQL COPY")
def test_benchmark_compares_with_copy(data, tmp_path):
    client = _client()

    output = export("--client", client.client_id, "--out", str(tmp_path / "out"), "--benchmark")

    assert "COPY:   5 rows" in output
    assert "export/COPY =" in output


@pytest.mark.skipif(connection.vendor == "postgresql", reason="runs where COPY does not exist")
def test_benchmark_needs_postgresql(data, tmp_path):
    with pytest.raises(CommandError, match="PostgreSQL"):
        export("--client", _client().client_id, "--out", str(tmp_path / "out"), "--benchmark")
