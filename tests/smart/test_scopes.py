"""Tests for smart.scopes: the SMART App Launch 2.x scope grammar, negotiation and consent wording."""

import pytest

from fhirapi.access import Context, ScopeRule
from smart.scopes import (
    ClinicalScope,
    ScopeSet,
    ScopeVersion,
    category_subscopes,
    describe_scope,
    intersect_scopes,
    is_known_scope,
    narrow_scope,
    parse_scope,
    parse_scopes,
    scope_covered,
    to_v1,
)

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_COND = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
LAB = f"patient/Observation.rs?category={OBS}|laboratory"
VITALS = f"patient/Observation.rs?category={OBS}|vital-signs"

P, U, S = Context.PATIENT, Context.USER, Context.SYSTEM
V1, V2 = ScopeVersion.V1, ScopeVersion.V2
OBSERVATIONS = "observations (vital signs, labs and other results)"


# parse_scope: well-formed clinical scopes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "scope", "context", "resource_type", "permissions", "constraints", "version"),
    [
        # SMART 2.x quick start and the patient/user/system example tables
        ("quick start patient/*.rs", "patient/*.rs", P, "*", "rs", (), V2),
        ("quick start user/*.cruds", "user/*.cruds", U, "*", "cruds", (), V2),
        ("patient Observation.rs", "patient/Observation.rs", P, "Observation", "rs", (), V2),
        ("patient Patient.r", "patient/Patient.r", P, "Patient", "r", (), V2),
        ("patient Observation.c", "patient/Observation.c", P, "Observation", "c", (), V2),
        ("patient *.cruds", "patient/*.cruds", P, "*", "cruds", (), V2),
        ("patient Observation.cu", "patient/Observation.cu", P, "Observation", "cu", (), V2),
        ("user Observation.rs", "user/Observation.rs", U, "Observation", "rs", (), V2),
        ("user Appointment.cruds", "user/Appointment.cruds", U, "Appointment", "cruds", (), V2),
        ("user Patient.rs", "user/Patient.rs", U, "Patient", "rs", (), V2),
        ("system Observation.rs", "system/Observation.rs", S, "Observation", "rs", (), V2),
        ("system *.rs", "system/*.rs", S, "*", "rs", (), V2),
        ("system Encounter.cud", "system/Encounter.cud", S, "Encounter", "cud", (), V2),
        ("system *.cruds", "system/*.cruds", S, "*", "cruds", (), V2),
        ("allergies cruds", "patient/AllergyIntolerance.cruds", P, "AllergyIntolerance", "cruds", (), V2),
        ("allergies rs", "patient/AllergyIntolerance.rs", P, "AllergyIntolerance", "rs", (), V2),
        ("allergies cud", "patient/AllergyIntolerance.cud", P, "AllergyIntolerance", "cud", (), V2),
        ("single letter d", "user/Observation.d", U, "Observation", "d", (), V2),
        ("single letter s", "patient/Observation.s", P, "Observation", "s", (), V2),
        ("letters cd", "patient/Observation.cd", P, "Observation", "cd", (), V2),
        ("letters rud", "patient/Observation.rud", P, "Observation", "rud", (), V2),
        # v1 forms (SMART 1.0, and the v1 -> v2 mapping)
        ("v1 patient *.read", "patient/*.read", P, "*", "rs", (), V1),
        ("v1 user *.*", "user/*.*", U, "*", "cruds", (), V1),
        ("v1 user Encounter.write", "user/Encounter.write", U, "Encounter", "cud", (), V1),
        ("v1 patient Observation.read", "patient/Observation.read", P, "Observation", "rs", (), V1),
        ("v1 system *.read", "system/*.read", S, "*", "rs", (), V1),
        ("v1 patient Patient.*", "patient/Patient.*", P, "Patient", "cruds", (), V1),
        # granular scopes (finer-grained constraints using search parameters)
        ("granular laboratory", LAB, P, "Observation", "rs", (("category", f"{OBS}|laboratory"),), V2),
        ("granular vital-signs", VITALS, P, "Observation", "rs", (("category", f"{OBS}|vital-signs"),), V2),
        (
            "granular sdoh",
            f"patient/Observation.rs?category={US_CORE}|sdoh",
            P,
            "Observation",
            "rs",
            (("category", f"{US_CORE}|sdoh"),),
            V2,
        ),
        (
            "granular condition encounter-diagnosis",
            f"patient/Condition.rs?category={COND}|encounter-diagnosis",
            P,
            "Condition",
            "rs",
            (("category", f"{COND}|encounter-diagnosis"),),
            V2,
        ),
        (
            "granular condition health-concern",
            f"user/Condition.rs?category={US_CORE_COND}|health-concern",
            U,
            "Condition",
            "rs",
            (("category", f"{US_CORE_COND}|health-concern"),),
            V2,
        ),
        (
            "experimental modifier code:in",
            "patient/Observation.rs?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
            P,
            "Observation",
            "rs",
            (("code:in", "http://valueset.example.org/ValueSet/diabetes-codes"),),
            V2,
        ),
        (
            "experimental chaining",
            "user/Observation.rs?patient.birthdate=1990",
            U,
            "Observation",
            "rs",
            (("patient.birthdate", "1990"),),
            V2,
        ),
        (
            "two constraints",
            "patient/Observation.rs?category=laboratory&status=final",
            P,
            "Observation",
            "rs",
            (("category", "laboratory"), ("status", "final")),
            V2,
        ),
        (
            "percent-decoded",
            "patient/Observation.rs?category=http%3A%2F%2Fx.org%7Clab",
            P,
            "Observation",
            "rs",
            (("category", "http://x.org|lab"),),
            V2,
        ),
        ("wildcard type with a query", "patient/*.rs?_security=N", P, "*", "rs", (("_security", "N"),), V2),
        (
            "v1 with a query",
            "patient/Observation.read?status=final",
            P,
            "Observation",
            "rs",
            (("status", "final"),),
            V1,
        ),
    ],
)
def test_parse_scope_well_formed(_case, scope, context, resource_type, permissions, constraints, version):
    assert parse_scope(scope) == ClinicalScope(
        context, resource_type, permissions, constraints, version, scope
    )


@pytest.mark.parametrize(
    ("_case", "scope"),
    [
        ("out of order dus", "patient/Observation.dus"),
        ("out of order sr", "patient/Observation.sr"),
        ("out of order dc", "patient/Observation.dc"),
        ("repeated letter", "patient/Observation.rrs"),
        ("repeated whole", "patient/Observation.cruds" + "s"),
        ("unknown letter", "patient/Observation.rx"),
        ("truncated v1 suffix", "patient/Observation.rea"),
        ("empty permission", "patient/Observation."),
        ("no permission", "patient/Observation"),
        ("uppercase permission", "patient/Observation.RS"),
        ("uppercase v1", "patient/Observation.Read"),
        ("v1 suffix plus letters", "patient/Observation.reads"),
        ("unknown context", "practitioner/Observation.rs"),
        ("capitalised context", "Patient/Observation.rs"),
        ("lowercase resource type", "patient/observation.rs"),
        ("one-letter resource type", "patient/O.rs"),
        ("digit in resource type", "patient/Observation2.rs"),
        ("no resource type", "patient/.rs"),
        ("double wildcard type", "patient/**.rs"),
        ("no slash", "patientObservation.rs"),
        ("leading space", " patient/Observation.rs"),
        ("trailing space", "patient/Observation.rs "),
        ("empty query", "patient/Observation.rs?"),
        ("query without value", "patient/Observation.rs?category"),
        ("blank value", "patient/Observation.rs?category="),
        ("blank value among others", "patient/Observation.rs?status=final&category="),
        ("empty pair", "patient/Observation.rs?a=1&&b=2"),
        ("trailing ampersand", "patient/Observation.rs?a=1&"),
        ("empty name", "patient/Observation.rs?=laboratory"),
        ("query with a quote", 'patient/Observation.rs?category="lab"'),
        ("query with a backslash", "patient/Observation.rs?category=a\\b"),
        ("launch scope", "launch"),
        ("openid", "openid"),
        ("empty string", ""),
        ("garbage", "everything"),
    ],
)
def test_parse_scope_malformed_is_none(_case, scope):
    assert parse_scope(scope) is None


@pytest.mark.parametrize(
    ("_case", "v1", "v2"),
    [
        ("read is rs", "patient/*.read", "patient/*.rs"),
        ("write is cud", "user/Encounter.write", "user/Encounter.cud"),
        ("star is cruds", "user/*.*", "user/*.cruds"),
        ("typed read is rs", "system/Observation.read", "system/Observation.rs"),
    ],
)
def test_v1_and_v2_give_the_same_rule(_case, v1, v2):
    assert parse_scope(v1).to_rule() == parse_scope(v2).to_rule()


def test_to_rule():
    assert parse_scope(LAB).to_rule() == ScopeRule(
        context=P,
        resource_type="Observation",
        permissions=frozenset({"r", "s"}),
        constraints=(("category", f"{OBS}|laboratory"),),
    )


# ClinicalScope.covers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "granting", "asked", "expected"),
    [
        ("identical", "patient/Observation.rs", "patient/Observation.rs", True),
        ("subset of letters", "patient/Observation.rs", "patient/Observation.r", True),
        ("superset of letters", "patient/Observation.r", "patient/Observation.rs", False),
        ("disjoint letters", "patient/Observation.cud", "patient/Observation.rs", False),
        ("wildcard covers a type", "patient/*.rs", "patient/Observation.rs", True),
        ("type does not cover wildcard", "patient/Observation.rs", "patient/*.rs", False),
        ("other type", "patient/Condition.rs", "patient/Observation.rs", False),
        ("user does not cover patient", "user/*.cruds", "patient/Observation.r", False),
        ("patient does not cover user", "patient/*.cruds", "user/Observation.r", False),
        ("system does not cover user", "system/*.cruds", "user/Observation.r", False),
        ("v1 read covers v2 rs", "patient/*.read", "patient/Observation.rs", True),
        ("v2 rs covers v1 read", "patient/*.rs", "patient/Observation.read", True),
        ("v1 write does not cover read", "patient/*.write", "patient/Observation.r", False),
        ("v1 star covers everything", "user/*.*", "user/Encounter.cruds", True),
        ("unconstrained covers constrained", "patient/Observation.rs", LAB, True),
        ("constrained does not cover unconstrained", LAB, "patient/Observation.rs", False),
        ("different constraint", LAB, VITALS, False),
        ("same constraint", LAB, LAB, True),
        ("wildcard unconstrained covers constrained", "patient/*.rs", LAB, True),
        (
            "fewer constraints cover more",
            "patient/Observation.rs?status=final",
            "patient/Observation.rs?category=laboratory&status=final",
            True,
        ),
        (
            "constraint order does not matter",
            "patient/Observation.rs?status=final&category=laboratory",
            "patient/Observation.rs?category=laboratory&status=final",
            True,
        ),
    ],
)
def test_covers(_case, granting, asked, expected):
    assert parse_scope(granting).covers(parse_scope(asked)) is expected


# parse_scopes and ScopeSet ---------------------------------------------------------------------------------


def test_parse_scopes_sorts_clinical_launch_and_unknown():
    # given a typical EHR-launch request with a malformed and an unknown scope
    scopes = parse_scopes("launch openid fhirUser patient/*.read foo user/Observation.dus offline_access")

    assert scopes.clinical == (parse_scope("patient/*.read"),)
    assert scopes.launch == frozenset({"launch", "openid", "fhirUser", "offline_access"})
    assert scopes.unknown == ("foo", "user/Observation.dus")
    assert scopes.to_string() == "launch openid fhirUser patient/*.read offline_access"


@pytest.mark.parametrize(
    ("_case", "given", "expected"),
    [
        ("empty string", "", ""),
        ("only whitespace", "  \t\n ", ""),
        ("extra whitespace", "  launch   patient/*.rs\topenid\n", "launch patient/*.rs openid"),
        (
            "duplicates removed, first kept",
            "openid launch openid patient/*.rs launch",
            "openid launch patient/*.rs",
        ),
        ("list of strings", ["launch", "patient/*.rs", "", "openid"], "launch patient/*.rs openid"),
        ("list with spaced items", ["launch openid", "patient/*.rs openid"], "launch openid patient/*.rs"),
        ("generator", (s for s in ["openid", "launch"]), "openid launch"),
        ("unknown dropped", "launch bogus patient/Observation.sr", "launch"),
        ("case-sensitive", "OpenID Launch fhiruser openid", "openid"),
        ("other launch types unknown", "launch/diagnosticreport launch/patient", "launch/patient"),
        (
            "all launch scopes",
            "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access",
            "openid fhirUser profile launch launch/patient launch/encounter offline_access online_access",
        ),
    ],
)
def test_parse_scopes_to_string(_case, given, expected):
    assert parse_scopes(given).to_string() == expected


def test_scope_set_built_by_hand_still_renders():
    scopes = ScopeSet(
        clinical=(parse_scope("patient/*.rs"),), launch=frozenset({"openid", "launch"}), unknown=()
    )

    assert scopes.to_string() == "launch openid patient/*.rs"


def test_rules_in_order_without_duplicates():
    scopes = parse_scopes(f"patient/*.read launch patient/*.rs {LAB} user/Encounter.write")

    assert scopes.rules() == (
        ScopeRule(P, "*", frozenset("rs")),
        ScopeRule(P, "Observation", frozenset("rs"), (("category", f"{OBS}|laboratory"),)),
        ScopeRule(U, "Encounter", frozenset("cud")),
    )


@pytest.mark.parametrize(
    ("_case", "name", "expected"),
    [
        ("launch given", "launch", True),
        ("openid given", "openid", True),
        ("offline_access not given", "offline_access", False),
        ("clinical scope given", "patient/*.read", True),
        ("equivalent clinical scope not given verbatim", "patient/*.rs", False),
        ("unknown given but unknown", "foo", False),
    ],
)
def test_has(_case, name, expected):
    assert parse_scopes("launch openid patient/*.read foo").has(name) is expected


@pytest.mark.parametrize(
    ("_case", "given", "expected"),
    [
        ("none", "launch openid", frozenset()),
        ("patient only", "patient/*.rs launch/patient", frozenset({P})),
        ("patient and user", "patient/Observation.rs user/Patient.rs", frozenset({P, U})),
        ("system", "system/*.rs", frozenset({S})),
    ],
)
def test_contexts(_case, given, expected):
    assert parse_scopes(given).contexts == expected


@pytest.mark.parametrize(
    ("_case", "scope", "expected"),
    [
        ("launch", "launch", True),
        ("launch/patient", "launch/patient", True),
        ("launch/encounter", "launch/encounter", True),
        ("openid", "openid", True),
        ("fhirUser", "fhirUser", True),
        ("profile", "profile", True),
        ("offline_access", "offline_access", True),
        ("online_access", "online_access", True),
        ("v2 clinical", "patient/Observation.rs", True),
        ("v1 clinical", "user/*.*", True),
        ("granular clinical", LAB, True),
        ("malformed clinical", "patient/Observation.dus", False),
        ("unlisted launch type", "launch/diagnosticreport", False),
        ("wrong case", "fhiruser", False),
        ("empty", "", False),
    ],
)
def test_is_known_scope(_case, scope, expected):
    assert is_known_scope(scope) is expected


# scope_covered ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "requested", "allowed", "expected"),
    [
        ("wildcard registered covers granular", f"{LAB}", ["patient/*.rs"], True),
        ("v1 read covers v2 rs", "patient/Observation.rs", ["patient/*.read"], True),
        ("v2 rs covers v1 read", "patient/Observation.read", ["patient/*.rs"], True),
        (
            "rs is r plus s",
            "patient/Observation.rs",
            ["patient/Observation.r", "patient/Observation.s"],
            True,
        ),
        (
            "letters from a wildcard and a type",
            "patient/Observation.rs",
            ["patient/Observation.r", "patient/*.s"],
            True,
        ),
        ("only r", "patient/Observation.rs", ["patient/Observation.r"], False),
        ("write not covered by read", "patient/Observation.cud", ["patient/*.read"], False),
        (
            "cruds by read plus write",
            "patient/Observation.cruds",
            ["patient/*.read", "patient/*.write"],
            True,
        ),
        ("other type", "patient/Observation.rs", ["patient/Condition.rs"], False),
        (
            "wildcard not covered by types",
            "patient/*.rs",
            ["patient/Observation.rs", "patient/Patient.rs"],
            False,
        ),
        ("other context", "patient/Observation.rs", ["user/*.cruds"], False),
        ("granular does not cover whole type", "patient/Observation.rs", [LAB, VITALS], False),
        ("granular covers the same granular", LAB, [LAB], True),
        ("launch by equality", "launch", ["launch", "openid"], True),
        ("launch/patient is not launch", "launch/patient", ["launch"], False),
        ("openid not allowed", "openid", ["patient/*.rs"], False),
        ("unknown never covered", "patient/Observation.dus", ["patient/*.cruds"], False),
        ("space-separated allowed string", "patient/Observation.rs", "launch patient/*.rs", True),
        ("nothing allowed", "patient/Observation.rs", [], False),
    ],
)
def test_scope_covered(_case, requested, allowed, expected):
    assert scope_covered(requested, allowed) is expected


# narrow_scope -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "requested", "allowed", "expected"),
    [
        ("cruds narrowed to rs", "patient/*.cruds", ["patient/*.rs"], "patient/*.rs"),
        (
            "v1 kept when fully covered",
            "patient/Observation.read",
            ["patient/*.rs"],
            "patient/Observation.read",
        ),
        ("v1 star partly covered gives v2 letters", "patient/*.*", ["patient/*.read"], "patient/*.rs"),
        ("v1 write partly covered", "user/Encounter.write", ["user/*.cu"], "user/Encounter.cu"),
        ("v2 kept when covered", "patient/Observation.rs", ["patient/*.cruds"], "patient/Observation.rs"),
        (
            "letters from two scopes",
            "patient/Observation.cruds",
            ["patient/*.r", "patient/Observation.d"],
            "patient/Observation.rd",
        ),
        (
            "granular narrowed keeps its query",
            f"patient/Observation.cruds?category={OBS}|laboratory",
            ["patient/*.rs"],
            LAB,
        ),
        ("nothing in common", "patient/Observation.cud", ["patient/*.rs"], None),
        ("other context", "patient/Observation.rs", ["user/*.rs"], None),
        ("constrained allowed does not narrow a whole type", "patient/Observation.rs", [LAB], None),
        ("launch allowed", "launch", ["launch"], "launch"),
        ("launch not allowed", "offline_access", ["launch"], None),
        ("unknown", "patient/Observation.sr", ["patient/*.cruds"], None),
        ("empty", "", ["patient/*.cruds"], None),
    ],
)
def test_narrow_scope(_case, requested, allowed, expected):
    assert narrow_scope(requested, allowed) == expected


# intersect_scopes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "requested", "allowed", "expected"),
    [
        (
            "typical standalone patient launch",
            "launch/patient openid fhirUser offline_access patient/*.cruds",
            ["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
            ["launch/patient", "openid", "fhirUser", "offline_access", "patient/*.rs"],
        ),
        (
            "v1 request granted as v1",
            "launch patient/*.read user/Encounter.write",
            ["launch", "patient/*.rs", "user/*.cud"],
            ["launch", "patient/*.read", "user/Encounter.write"],
        ),
        (
            "unknown and ungranted dropped",
            "launch bogus patient/Observation.dus offline_access patient/Observation.cud patient/Patient.rs",
            ["launch", "patient/*.rs"],
            ["launch", "patient/Patient.rs"],
        ),
        (
            "de-duplicated, order kept",
            "patient/*.cruds patient/*.rs openid patient/*.rs",
            ["openid", "patient/*.rs"],
            ["patient/*.rs", "openid"],
        ),
        (
            "wildcard request meets typed registration",
            "patient/*.rs",
            ["patient/Observation.rs", "patient/Patient.r", "patient/Condition.cud"],
            ["patient/Observation.rs", "patient/Patient.r"],
        ),
        (
            "v1 wildcard meets typed registration keeps v1",
            "patient/*.read",
            ["patient/Observation.rs"],
            ["patient/Observation.read"],
        ),
        (
            "whole type meets granular registration",
            "patient/Observation.rs",
            [LAB, VITALS],
            [LAB, VITALS],
        ),
        (
            "granular request under wildcard",
            f"{LAB} patient/Patient.rs",
            ["patient/*.rs"],
            [LAB, "patient/Patient.rs"],
        ),
        (
            "partial narrowing plus a narrower type",
            "patient/*.rs",
            ["patient/*.r", "patient/Observation.rs"],
            ["patient/*.r", "patient/Observation.rs"],
        ),
        (
            "a narrower type already inside the narrowed scope is not repeated",
            "patient/*.rs",
            ["patient/*.rs", "patient/Observation.r"],
            ["patient/*.rs"],
        ),
        (
            "constraints from both sides are combined",
            "patient/Observation.rs?status=final",
            [LAB],
            [f"patient/Observation.rs?status=final&category={OBS}|laboratory"],
        ),
        ("nothing allowed", "launch patient/*.rs", [], []),
        ("nothing requested", "", ["patient/*.rs"], []),
    ],
)
def test_intersect_scopes(_case, requested, allowed, expected):
    assert intersect_scopes(requested, allowed) == expected


def test_intersect_checklist_83_limited_access():
    # given the patient approves only Patient, Condition and Observation (checklist §11 item 83)
    approved = ["patient/Patient.rs", "patient/Condition.rs", "patient/Observation.rs"]

    granted = intersect_scopes("launch/patient openid fhirUser patient/*.rs", ["launch/patient", *approved])

    assert granted == ["launch/patient", *approved]
    assert not scope_covered("patient/AllergyIntolerance.rs", granted)
    assert not any(parse_scope(s).resource_type == "*" for s in granted if parse_scope(s))


def test_intersect_checklist_89_granular_selection():
    # given the app asks for whole types and the patient picks category sub-scopes instead (item 89)
    requested = "patient/Condition.rs patient/Observation.rs patient/Patient.rs"
    chosen = [
        *category_subscopes("patient/Condition.rs")[:2],
        *category_subscopes("patient/Observation.rs")[:1],
        "patient/Patient.rs",
    ]

    granted = intersect_scopes(requested, chosen)

    assert granted == [
        f"patient/Condition.rs?category={COND}|problem-list-item",
        f"patient/Condition.rs?category={COND}|encounter-diagnosis",
        f"patient/Observation.rs?category={OBS}|laboratory",
        "patient/Patient.rs",
    ]
    assert not scope_covered("patient/Condition.rs", granted)
    assert not scope_covered("patient/Observation.rs", granted)


# to_v1 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "scope", "expected"),
    [
        ("rs is read", "patient/Observation.rs", "patient/Observation.read"),
        ("cud is write", "user/Encounter.cud", "user/Encounter.write"),
        ("cruds is star", "user/*.cruds", "user/*.*"),
        ("v1 stays v1", "patient/*.read", "patient/*.read"),
        ("query kept", LAB, f"patient/Observation.read?category={OBS}|laboratory"),
        ("r alone has none", "patient/Patient.r", None),
        ("cu has none", "patient/Observation.cu", None),
        ("rds has none", "patient/Observation.rds", None),
    ],
)
def test_to_v1(_case, scope, expected):
    assert to_v1(parse_scope(scope)) == expected


# category_subscopes -----------------------------------------------------------------------------------------

OBSERVATION_CODES = [
    *(f"{OBS}|{code}" for code in ["laboratory", "social-history", "vital-signs", "survey", "imaging"]),
    *(f"{OBS}|{code}" for code in ["exam", "procedure", "therapy", "activity"]),
    f"{US_CORE}|sdoh",
]
CONDITION_CODES = [
    f"{COND}|problem-list-item",
    f"{COND}|encounter-diagnosis",
    f"{US_CORE_COND}|health-concern",
]


@pytest.mark.parametrize(
    ("_case", "scope", "expected"),
    [
        (
            "patient Observation.rs",
            "patient/Observation.rs",
            [f"patient/Observation.rs?category={c}" for c in OBSERVATION_CODES],
        ),
        (
            "user Observation.rs",
            "user/Observation.rs",
            [f"user/Observation.rs?category={c}" for c in OBSERVATION_CODES],
        ),
        (
            "patient Condition.rs",
            "patient/Condition.rs",
            [f"patient/Condition.rs?category={c}" for c in CONDITION_CODES],
        ),
        (
            "v1 read becomes rs",
            "patient/Condition.read",
            [f"patient/Condition.rs?category={c}" for c in CONDITION_CODES],
        ),
        (
            "cruds restricted to rs",
            "user/Observation.cruds",
            [f"user/Observation.rs?category={c}" for c in OBSERVATION_CODES],
        ),
        (
            "r only keeps r",
            "patient/Condition.r",
            [f"patient/Condition.r?category={c}" for c in CONDITION_CODES],
        ),
        (
            "s only keeps s",
            "patient/Condition.s",
            [f"patient/Condition.s?category={c}" for c in CONDITION_CODES],
        ),
        ("wildcard type", "patient/*.rs", []),
        ("other type", "patient/Patient.rs", []),
        ("write only", "patient/Observation.cud", []),
        ("already constrained", LAB, []),
        ("system context", "system/Observation.rs", []),
        ("launch", "launch", []),
        ("malformed", "patient/Observation.sr", []),
    ],
)
def test_category_subscopes(_case, scope, expected):
    assert category_subscopes(scope) == expected


def test_every_category_subscope_is_known_and_covered_by_its_parent():
    for parent in ["patient/Observation.rs", "user/Condition.read"]:
        for sub in category_subscopes(parent):
            assert is_known_scope(sub)
            assert scope_covered(sub, [parent])
            assert not scope_covered(parent, [sub])


# describe_scope ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "scope", "expected"),
    [
        ("vital signs", VITALS, "Read and search your vital signs"),
        ("lab results", LAB, "Read and search your lab results"),
        (
            "sdoh",
            f"patient/Observation.rs?category={US_CORE}|sdoh",
            "Read and search your social needs (social determinants of health)",
        ),
        (
            "problem list",
            f"patient/Condition.rs?category={COND}|problem-list-item",
            "Read and search your problem list",
        ),
        (
            "encounter diagnoses",
            f"user/Condition.rs?category={COND}|encounter-diagnosis",
            "Read and search patients' encounter diagnoses",
        ),
        (
            "health concerns",
            f"patient/Condition.r?category={US_CORE_COND}|health-concern",
            "Read your health concerns",
        ),
        (
            "social history",
            f"patient/Observation.s?category={OBS}|social-history",
            "Search your social history",
        ),
        (
            "category without system",
            "patient/Observation.rs?category=survey",
            "Read and search your survey answers",
        ),
        ("user all", "user/*.cruds", "Read, search, create, update and delete all data you can access"),
        ("patient all", "patient/*.rs", "Read and search all your data"),
        ("system all", "system/*.rs", "Read and search all data"),
        ("v1 patient all", "patient/*.read", "Read and search all your data"),
        ("v1 write", "user/Encounter.write", "Create, update and delete patients' visits and encounters"),
        ("observations", "patient/Observation.rs", f"Read and search your {OBSERVATIONS}"),
        ("conditions", "patient/Condition.rs", "Read and search your conditions (problems and diagnoses)"),
        ("medication orders", "patient/MedicationRequest.rs", "Read and search your medication orders"),
        (
            "allergies",
            "patient/AllergyIntolerance.cruds",
            "Read, search, create, update and delete your allergies",
        ),
        ("demographics", "patient/Patient.r", "Read your demographics"),
        ("user type", "user/Observation.rs", f"Read and search patients' {OBSERVATIONS}"),
        ("system type", "system/Observation.rs", f"Read and search all {OBSERVATIONS}"),
        ("create only", "patient/Observation.c", f"Create your {OBSERVATIONS}"),
        ("delete only", "user/Appointment.d", "Delete patients' appointments"),
        (
            "unknown type split",
            "patient/FamilyMemberHistory.rs",
            "Read and search your family member history",
        ),
        ("unknown type split user", "user/MolecularSequence.r", "Read patients' molecular sequence"),
        (
            "unknown category noted",
            "patient/Observation.rs?category=x|foo",
            f"Read and search your {OBSERVATIONS}, only where category is x|foo",
        ),
        (
            "other constraint noted",
            "patient/Observation.rs?code:in=http://vs.org/diabetes",
            f"Read and search your {OBSERVATIONS}, only where code:in is http://vs.org/diabetes",
        ),
        (
            "category plus other constraint",
            f"{LAB}&status=final",
            "Read and search your lab results, only where status is final",
        ),
        (
            "wildcard with category",
            f"patient/*.rs?category={OBS}|vital-signs",
            "Read and search your vital signs",
        ),
        ("openid", "openid", "Know who you are"),
        ("fhirUser", "fhirUser", "Know who you are"),
        ("profile", "profile", "Know who you are"),
        ("launch", "launch", "Open with the patient and encounter in context"),
        ("launch/patient", "launch/patient", "Open with the patient you choose"),
        ("launch/encounter", "launch/encounter", "Open with the encounter in context"),
        (
            "offline_access",
            "offline_access",
            "Keep access when you are not using the app (until you revoke it)",
        ),
        ("online_access", "online_access", "Keep access while you are using the app"),
        ("unknown returned as is", "patient/Observation.dus", "patient/Observation.dus"),
    ],
)
def test_describe_scope(_case, scope, expected):
    assert describe_scope(scope) == expected


def test_every_category_subscope_has_friendly_words():
    for parent in ["patient/Observation.rs", "patient/Condition.rs"]:
        for sub in category_subscopes(parent):
            description = describe_scope(sub)
            assert "only where" not in description
            assert "http" not in description


def test_intersect_scopes_answers_are_the_callers_own():
    """Grants are computed once per (requested, allowed) pair; each caller still gets a list of its own."""
    first = intersect_scopes("launch patient/*.rs", "launch patient/Observation.rs")
    first.append("patient/*.cruds")
    assert intersect_scopes("launch patient/*.rs", "launch patient/Observation.rs") == [
        "launch",
        "patient/Observation.rs",
    ]
    assert intersect_scopes(["launch", "patient/*.rs"], ["launch patient/Observation.rs"]) == [
        "launch",
        "patient/Observation.rs",
    ]
