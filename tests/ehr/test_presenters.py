"""Pure display helpers: FHIR datatypes to text, chart rows, vital trends, launch timeline events."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ehr import presenters as p


@pytest.mark.parametrize(
    ("_case", "names", "expected"),
    [("official wins",
      [{"use": "usual", "given": ["Bob"]}, {"use": "official", "family": "Smith", "given": ["Robert", "J"]}],
      "Robert J Smith"),
     ("text wins", [{"text": "Dr. A. B."}], "Dr. A. B."),
     ("none", [], "(no name)"),
     ("family only", [{"family": "Solo"}], "Solo")],
)  # fmt: skip
def test_human_name(_case, names, expected):
    assert p.human_name(names) == expected


def test_family_first():
    assert p.family_first([{"family": "García", "given": ["Inés", "Mónica"]}]) == "GARCÍA, Inés Mónica"


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [("1961-04-12", date(2024, 4, 11), 62), ("1961-04-12", date(2024, 4, 12), 63), ("2000", date(2024, 1, 1), 24),
     (None, date(2024, 1, 1), None)],
)  # fmt: skip
def test_age_years(birth, today, age):
    assert p.age_years(birth, today) == age


def test_mrn_prefers_our_system_then_mr_type():
    ours = {"system": p.MRN_SYSTEM, "value": "M1"}
    typed = {"type": {"coding": [{"code": "MR"}]}, "value": "T1"}
    assert p.mrn([typed, ours]) == "M1"
    assert p.mrn([{"value": "SSN"}, typed]) == "T1"
    assert p.mrn([{"value": "SSN"}]) == ""


def test_concept_and_quantity_text():
    assert p.concept_text({"coding": [{"code": "x"}, {"code": "y", "display": "Why"}]}) == "Why"
    assert p.concept_text({"text": "T", "coding": [{"display": "D"}]}) == "T"
    assert p.quantity_text({"value": Decimal("72.0"), "unit": "/min"}) == "72 /min"
    assert p.quantity_text({"value": 37.25, "code": "Cel"}) == "37.25 Cel"


def test_observation_value_of_a_panel():
    body = {
        "component": [{"valueQuantity": {"value": 120, "unit": "mmHg"}}, {"valueQuantity": {"value": 80}}]
    }
    assert p.observation_value(body) == "120/80 mmHg"


def test_allergy_alert_skips_resolved_refuted_and_no_known_allergy():
    active = {"code": {"text": "Peanut"}, "clinicalStatus": {"coding": [{"code": "active"}]}}
    resolved = {"code": {"text": "Latex"}, "clinicalStatus": {"coding": [{"code": "resolved"}]}}
    nka = {"code": {"coding": [{"code": "716186003", "display": "No known allergy"}]}}
    refuted = {**active, "verificationStatus": {"coding": [{"code": "refuted"}]}}
    assert [p.is_active_allergy(a) for a in (active, resolved, nka, refuted)] == [True, False, False, False]


def test_vital_trends_sorted_oldest_first_across_time_zones():
    def hr(value, when):
        return {"status": "final", "code": {"coding": [{"code": "8867-4"}]}, "effectiveDateTime": when,
                "valueQuantity": {"value": Decimal(value)}}  # fmt: skip

    trends = p.vital_trends([hr(70, "2024-01-02T10:00:00-05:00"), hr(60, "2024-01-02T12:00:00Z"),
                             hr(99, "2024-01-01"), {**hr(1, "2024-01-03"), "status": "entered-in-error"}])  # fmt: skip
    assert trends["hr"].series == {"Heart rate": [99.0, 60.0, 70.0]}
    assert trends["hr"].latest == "70 /min"
    assert trends["bp"].labels == []


def test_timeline_event_hides_credentials_and_flags_errors():
    when = datetime(2024, 1, 1, tzinfo=UTC)
    event = p.timeline_event(
        kind="token-issued",
        when=when,
        detail={"scope": "launch patient/*.rs", "access_token": "x", "patient": "p1"},
    )
    assert event.fields == [("scope", "launch patient/*.rs"), ("patient", "p1")]
    assert event.summary == "launch patient/*.rs"
    assert not event.is_error
    call = p.timeline_event(
        kind="fhir-call", when=when, detail={"method": "GET", "path": "Observation?patient=p1", "status": 403}
    )
    assert (call.summary, call.is_error) == ("GET Observation?patient=p1 → 403", True)
    error = p.timeline_event(
        kind="authorize-error",
        when=when,
        detail={"error": "access_denied", "error_description": "User denied."},
    )
    assert (error.label, error.summary, error.is_error) == (
        "Authorize error", "access_denied — User denied.", True,
    )  # fmt: skip
