"""FHIRAPI["RESPONSE_OBSERVERS"]: told of each FHIR response made with a grant once it has been sent; a failing
observer is logged and changes nothing the client got."""

import logging

import pytest

from tests.conftest import patient, put_resource

pytestmark = pytest.mark.django_db

seen: list[tuple[str, int, bool]] = []


def recording_observer(request, response, grant) -> None:
    seen.append((request.get_full_path(), response.status_code, response.closed))


def failing_observer(request, response, grant) -> None:
    raise RuntimeError("the audit store is down")


@pytest.fixture
def observers(settings):
    seen.clear()

    def use(*paths: str) -> None:
        settings.FHIRAPI = {**settings.FHIRAPI, "RESPONSE_OBSERVERS": list(paths)}

    return use


def test_observers_are_told_once_the_response_is_closed(fhir, observers):
    # given an observer
    observers(f"{__name__}.recording_observer")
    put_resource(patient("p1"))

    # when a client reads a resource and then asks for one that does not exist
    api = fhir("system/*.rs")
    assert api.get("Patient/p1").status_code == 200
    assert api.get("Patient/nope").status_code == 404

    # then the observer heard of both calls, each after its response was closed (a WSGI server closes a
    # response once it has written it)
    assert seen == [("/fhir/Patient/p1", 200, True), ("/fhir/Patient/nope", 404, True)]


def test_a_failing_observer_is_logged_and_the_others_still_run(fhir, observers, caplog):
    # given an observer that fails before one that works
    observers(f"{__name__}.failing_observer", f"{__name__}.recording_observer")
    put_resource(patient("p1"))

    # when a client reads a resource
    with caplog.at_level(logging.ERROR, logger="fhirapi.after_response"):
        response = fhir("system/*.rs").get("Patient/p1")

    # then the client got its resource, the failure is in the log, and the next observer was told
    assert response.status_code == 200 and response.json()["id"] == "p1"
    assert "the audit store is down" in caplog.text
    assert seen == [("/fhir/Patient/p1", 200, True)]


def test_calls_without_a_grant_tell_no_observer(fhir, observers):
    # given an observer
    observers(f"{__name__}.recording_observer")

    # when a call comes without a token
    response = fhir(None).get("Patient/p1")

    # then it is refused and no observer hears of it
    assert response.status_code == 401 and seen == []
