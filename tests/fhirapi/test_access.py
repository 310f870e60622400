"""The access policy: SMART scope rules + launch context -> allowed or not, and the SQL filters that limit it."""

import pytest

from fhirapi.access import (
    DENIED,
    UNRESTRICTED,
    AccessDecision,
    AccessFilter,
    Context,
    Grant,
    Interaction,
    ScopeRule,
    SmartScopePolicy,
)

P, U, S = Context.PATIENT, Context.USER, Context.SYSTEM
VITALS = (("category", "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"),)


def rule(context, resource_type, letters, constraints=()):
    return ScopeRule(context, resource_type, frozenset(letters), constraints)


CASES = [
    ("_no rules", (), {}, "Observation", Interaction.READ, DENIED),
    (
        "_patient rs read",
        (rule(P, "Observation", "rs"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.READ,
        AccessDecision(True, (AccessFilter("p1"),)),
    ),
    (
        "_patient rs search",
        (rule(P, "*", "rs"),),
        {"patient_id": "p1"},
        "Condition",
        Interaction.SEARCH_TYPE,
        AccessDecision(True, (AccessFilter("p1"),)),
    ),
    (
        "_patient r cannot search",
        (rule(P, "Observation", "r"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.SEARCH_TYPE,
        DENIED,
    ),
    (
        "_patient s cannot read",
        (rule(P, "Observation", "s"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.VREAD,
        DENIED,
    ),
    (
        "_r covers instance history",
        (rule(P, "Observation", "r"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.HISTORY_INSTANCE,
        AccessDecision(True, (AccessFilter("p1"),)),
    ),
    (
        "_s covers type history",
        (rule(P, "Observation", "s"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.HISTORY_TYPE,
        AccessDecision(True, (AccessFilter("p1"),)),
    ),
    (
        "_rs cannot create",
        (rule(P, "Observation", "rs"),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.CREATE,
        DENIED,
    ),
    ("_u covers patch", (rule(U, "Observation", "u"),), {}, "Observation", Interaction.PATCH, UNRESTRICTED),
    ("_d deletes", (rule(S, "*", "d"),), {}, "Observation", Interaction.DELETE, UNRESTRICTED),
    (
        "_other type",
        (rule(P, "Observation", "rs"),),
        {"patient_id": "p1"},
        "Condition",
        Interaction.READ,
        DENIED,
    ),
    ("_patient scope without patient", (rule(P, "*", "rs"),), {}, "Observation", Interaction.READ, DENIED),
    (
        "_patient scope on shared type",
        (rule(P, "*", "rs"),),
        {"patient_id": "p1"},
        "Practitioner",
        Interaction.READ,
        UNRESTRICTED,
    ),
    (
        "_practitioner user sees all",
        (rule(U, "*", "rs"),),
        {"fhir_user": "Practitioner/d1"},
        "Observation",
        Interaction.READ,
        UNRESTRICTED,
    ),
    (
        "_patient user confined",
        (rule(U, "*", "rs"),),
        {"fhir_user": "Patient/p9"},
        "Observation",
        Interaction.READ,
        AccessDecision(True, (AccessFilter("p9"),)),
    ),
    (
        "_system unconfined",
        (rule(S, "Observation", "rs"),),
        {},
        "Observation",
        Interaction.SEARCH_TYPE,
        UNRESTRICTED,
    ),
    (
        "_granular",
        (rule(P, "Observation", "rs", VITALS),),
        {"patient_id": "p1"},
        "Observation",
        Interaction.SEARCH_TYPE,
        AccessDecision(True, (AccessFilter("p1", VITALS),)),
    ),
    (
        "_granular or whole type",
        (rule(P, "Observation", "rs", VITALS), rule(P, "Observation", "rs")),
        {"patient_id": "p1"},
        "Observation",
        Interaction.READ,
        AccessDecision(True, (AccessFilter("p1", VITALS), AccessFilter("p1"))),
    ),
    (
        "_unconstrained system wins",
        (rule(P, "Observation", "rs"), rule(S, "*", "rs")),
        {"patient_id": "p1"},
        "Observation",
        Interaction.READ,
        UNRESTRICTED,
    ),
]


@pytest.mark.parametrize(("_case", "rules", "context", "resource_type", "interaction", "expected"), CASES)
def test_decide(_case, rules, context, resource_type, interaction, expected):
    # given a grant with these rules and launch context
    grant = Grant(rules=rules, **context)
    # when the policy decides one interaction on one type
    decision = SmartScopePolicy().decide(grant, resource_type, interaction)
    # then it matches the SMART IG's mapping
    assert decision == expected
