"""Tests for fhirapi.search, the pure search parser (no database): values, modifiers, chains, result params."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fhirapi.search import (
    Chain,
    Clause,
    DateQuery,
    Include,
    MissingQuery,
    NumberQuery,
    QuantityQuery,
    ReferenceQuery,
    SearchError,
    StringQuery,
    TokenQuery,
    UriQuery,
    parse_constraints,
    parse_search,
)
from fhirapi.searchparams import ParamType, SearchParam, get_search_param

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
END = 999_999  # microseconds at the inclusive end of a second


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def param(resource_type: str, name: str) -> SearchParam:
    found = get_search_param(resource_type, name)
    assert found is not None, name
    return found


@pytest.fixture
def number_param(monkeypatch):
    """R4's 21 supported types have no number parameter: lend Observation one for the number grammar."""
    from fhirapi import searchparams

    probability = SearchParam("probability", ParamType.NUMBER, ("Observation.value.ofType(decimal)",))
    monkeypatch.setitem(searchparams.REGISTRY["Observation"], "probability", probability)
    return probability


# -- values ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource_type", "key", "value", "expected"),
    [
        ("_token code, any system", "Observation", "code", "8867-4", (TokenQuery(None, "8867-4"),)),
        ("_token system|code", "Observation", "code", f"{LOINC}|8867-4", (TokenQuery(LOINC, "8867-4"),)),
        ("_token |code means no system", "Observation", "code", "|x", (TokenQuery("", "x"),)),
        ("_token system| means any code", "Observation", "code", f"{LOINC}|", (TokenQuery(LOINC, None),)),
        ("_token escaped bar", "Observation", "code", r"a\|b", (TokenQuery(None, "a|b"),)),
        ("_comma is OR", "Observation", "code", "a,b", (TokenQuery(None, "a"), TokenQuery(None, "b"))),
        ("_escaped comma", "Observation", "code", r"a\,b", (TokenQuery(None, "a,b"),)),
        ("_empty OR parts dropped", "Observation", "code", "a,,b", (TokenQuery(None, "a"), TokenQuery(None, "b"))),
        ("_escaped backslash and dollar", "Observation", "code", r"a\\b\$", (TokenQuery(None, "a\\b$"),)),
        ("_id is never split on |", "Observation", "_id", "a|b", (TokenQuery(None, "a|b"),)),
        ("_string as given", "Patient", "name", "Gómez", (StringQuery("Gómez"),)),
        ("_string escaped comma", "Patient", "name", r"Smith\, Jr", (StringQuery("Smith, Jr"),)),
        ("_date year", "Patient", "birthdate", "2020",
         (DateQuery("eq", utc(2020, 1, 1), utc(2020, 12, 31, 23, 59, 59, END)),)),
        ("_date month", "Patient", "birthdate", "2020-02",
         (DateQuery("eq", utc(2020, 2, 1), utc(2020, 2, 29, 23, 59, 59, END)),)),
        ("_date minute with offset", "Observation", "date", "ge2020-03-04T10:15+02:00",
         (DateQuery("ge", utc(2020, 3, 4, 8, 15), utc(2020, 3, 4, 8, 15, 59, END)),)),
        ("_date unencoded + arrives as space", "Observation", "date", "lt2020-03-04T10:15:00 02:00",
         (DateQuery("lt", utc(2020, 3, 4, 8, 15), utc(2020, 3, 4, 8, 15, 0, END)),)),
        ("_lastUpdated instant", "Observation", "_lastUpdated", "gt2024-01-01T00:00:00Z",
         (DateQuery("gt", utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 0, END)),)),
        ("_quantity number only", "Observation", "value-quantity", "5.4",
         (QuantityQuery("eq", Decimal("5.4"), None, None, Decimal("5.35"), Decimal("5.45")),)),
        ("_quantity system and code", "Observation", "value-quantity", f"gt5.4|{UCUM}|mg",
         (QuantityQuery("gt", Decimal("5.4"), UCUM, "mg", Decimal("5.35"), Decimal("5.45")),)),
        ("_quantity code or unit", "Observation", "value-quantity", "le100||mm[Hg]",
         (QuantityQuery("le", Decimal("100"), None, "mm[Hg]", Decimal("99.5"), Decimal("100.5")),)),
        ("_reference id", "Observation", "subject", "123", (ReferenceQuery(None, "123", None),)),
        ("_reference Type/id", "Observation", "subject", "Patient/123", (ReferenceQuery("Patient", "123", None),)),
        ("_reference version dropped", "Observation", "subject", "Patient/123/_history/2",
         (ReferenceQuery("Patient", "123", None),)),
        ("_reference absolute URL", "Observation", "subject", "http://ex.org/fhir/Patient/123",
         (ReferenceQuery("Patient", "123", "http://ex.org/fhir/Patient/123"),)),
        ("_reference other URL", "Observation", "focus", "http://ex.org/thing",
         (ReferenceQuery(None, None, "http://ex.org/thing"),)),
        ("_reference type modifier", "Observation", "subject:Patient", "123",
         (ReferenceQuery("Patient", "123", None),)),
        ("_reference type modifier and Type/id", "Observation", "subject:Patient", "Patient/123",
         (ReferenceQuery("Patient", "123", None),)),
        ("_uri", "Device", "url", "http://ex.org/device", (UriQuery("http://ex.org/device"),)),
        ("_missing true", "Patient", "birthdate:missing", "true", (MissingQuery(True),)),
        ("_missing false", "Observation", "subject:missing", "false", (MissingQuery(False),)),
    ],
)  # fmt: skip
def test_values(_case, resource_type, key, value, expected):
    (clause,) = parse_search(resource_type, [(key, value)]).clauses
    assert clause.values == expected
    assert clause.param == param(resource_type, key.partition(":")[0])
    assert clause.chain is None


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"])
def test_every_date_prefix(prefix):
    (clause,) = parse_search("Observation", [("date", f"{prefix}2020-03-04")]).clauses
    assert clause.values == (DateQuery(prefix, utc(2020, 3, 4), utc(2020, 3, 4, 23, 59, 59, END)),)


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("_integer: half a unit", "100", NumberQuery("eq", Decimal("100"), Decimal("99.5"), Decimal("100.5"))),
        ("_decimals set the precision", "100.00",
         NumberQuery("eq", Decimal("100.00"), Decimal("99.995"), Decimal("100.005"))),
        ("_exponent", "1e2", NumberQuery("eq", Decimal("1e2"), Decimal("50"), Decimal("150"))),
        ("_negative with prefix", "lt-5", NumberQuery("lt", Decimal("-5"), Decimal("-5.5"), Decimal("-4.5"))),
        ("_ap", "ap0.8", NumberQuery("ap", Decimal("0.8"), Decimal("0.75"), Decimal("0.85"))),
    ],
)  # fmt: skip
def test_numbers(number_param, _case, value, expected):
    (clause,) = parse_search("Observation", [("probability", value)]).clauses
    assert clause.values == (expected,)


@pytest.mark.parametrize(
    ("_case", "key", "value", "modifier"),
    [
        ("_token :not", "code", "x", "not"),
        ("_string :exact", "value-string", "Positive", "exact"),
        ("_string :contains", "value-string", "osit", "contains"),
        ("_reference :[type]", "subject:Patient", "1", "Patient"),
        ("_any type :missing", "date:missing", "true", "missing"),
    ],
)
def test_supported_modifiers(_case, key, value, modifier):
    query = parse_search("Observation", [(key if ":" in key else f"{key}:{modifier}", value)], strict=True)
    assert query.clauses[0].modifier == modifier
    assert query.ignored == ()


def test_repeated_parameter_is_and():
    query = parse_search("Observation", [("date", "ge2020"), ("date", "lt2021")])
    assert [clause.values[0].prefix for clause in query.clauses] == ["ge", "lt"]


def test_empty_value_is_no_clause():
    assert parse_search("Patient", [("name", ""), ("name", ",")]).clauses == ()


# -- chains ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "key", "value", "expected"),
    [
        ("_typed chain", "subject:Patient.name", "peter",
         Chain(param("Observation", "subject"), "Patient",
               Clause(param("Patient", "name"), None, (StringQuery("peter"),)))),
        ("_single-target chain", "patient.identifier", "sys|1",
         Chain(param("Observation", "patient"), "Patient",
               Clause(param("Patient", "identifier"), None, (TokenQuery("sys", "1"),)))),
        ("_chain on _id", "patient._id", "p1",
         Chain(param("Observation", "patient"), "Patient",
               Clause(param("Patient", "_id"), None, (TokenQuery(None, "p1"),)))),
        ("_only one target has the parameter", "subject.gender", "female",
         Chain(param("Observation", "subject"), "Patient",
               Clause(param("Patient", "gender"), None, (TokenQuery(None, "female"),)))),
        ("_inner modifier", "subject:Patient.name:exact", "Peter",
         Chain(param("Observation", "subject"), "Patient",
               Clause(param("Patient", "name"), "exact", (StringQuery("Peter"),)))),
    ],
)  # fmt: skip
def test_chains(_case, key, value, expected):
    (clause,) = parse_search("Observation", [(key, value)], strict=True).clauses
    assert clause.param is None
    assert clause.values == ()
    assert clause.chain == expected


def test_chain_with_empty_value_is_no_clause():
    assert parse_search("Observation", [("patient.name", "")]).clauses == ()


# -- result parameters ----------------------------------------------------------------------------------------


def test_defaults():
    query = parse_search("Observation", [])
    assert (query.count, query.offset, query.total, query.summary) == (50, 0, "accurate", None)
    assert (query.sort, query.elements, query.includes, query.revincludes, query.ignored) == ((),) * 5


@pytest.mark.parametrize(
    ("_case", "params", "kwargs", "expected"),
    [
        ("_count", [("_count", "10")], {}, 10),
        ("_count 0 asks for the total only", [("_count", "0")], {}, 0),
        ("_count capped", [("_count", "5000")], {}, 1000),
        ("_count capped by max_count", [("_count", "500")], {"max_count": 100}, 100),
        ("_default count", [], {"default_count": 20}, 20),
        ("_default count capped", [], {"default_count": 500, "max_count": 100}, 100),
        ("_last _count wins", [("_count", "5"), ("_count", "7")], {}, 7),
    ],
)
def test_count(_case, params, kwargs, expected):
    assert parse_search("Observation", params, **kwargs).count == expected


@pytest.mark.parametrize(
    ("_case", "params", "attribute", "expected"),
    [
        ("_offset", [("_offset", "20")], "offset", 20),
        ("_total none", [("_total", "none")], "total", "none"),
        ("_total estimate", [("_total", "estimate")], "total", "estimate"),
        ("_summary count", [("_summary", "count")], "summary", "count"),
        ("_summary true", [("_summary", "true")], "summary", "true"),
        ("_elements", [("_elements", "identifier, status,identifier")], "elements", ("identifier", "status")),
        ("_format and _pretty are the view's", [("_format", "json"), ("_pretty", "true")], "ignored", ()),
    ],
)
def test_result_parameters(_case, params, attribute, expected):
    assert getattr(parse_search("Observation", params, strict=True), attribute) == expected


@pytest.mark.parametrize(
    ("_case", "resource_type", "value", "expected"),
    [
        ("_ascending", "Observation", "date", [("date", False)]),
        ("_several keys", "Observation", "-date,_id", [("date", True), ("_id", False)]),
        ("_lastUpdated", "Observation", "-_lastUpdated", [("_lastUpdated", True)]),
        ("_string, token, quantity", "Observation", "value-string,code,-value-quantity",
         [("value-string", False), ("code", False), ("value-quantity", True)]),
        ("_system search", None, "_id", [("_id", False)]),
    ],
)  # fmt: skip
def test_sort(_case, resource_type, value, expected):
    query = parse_search(resource_type, [("_sort", value)])
    assert [(key.param.name, key.descending) for key in query.sort] == expected


def test_repeated_sort_appends_keys():
    query = parse_search("Observation", [("_sort", "-date"), ("_sort", "_id")])
    assert [key.param.name for key in query.sort] == ["date", "_id"]


@pytest.mark.parametrize(
    ("_case", "resource_type", "key", "value", "includes", "revincludes"),
    [
        ("_include", "Observation", "_include", "Observation:patient",
         (Include("Observation", "patient", None, False),), ()),
        ("_include with target type", "MedicationRequest", "_include", "MedicationRequest:medication:Medication",
         (Include("MedicationRequest", "medication", "Medication", False),), ()),
        ("_include *", "Observation", "_include", "*", (Include("Observation", "*", None, False),), ()),
        ("_include Type:*", "Observation", "_include", "Observation:*",
         (Include("Observation", "*", None, False),), ()),
        ("_include:iterate from another type", "MedicationRequest", "_include:iterate", "Patient:organization",
         (Include("Patient", "organization", None, True),), ()),
        ("_include:recurse (STU3 spelling)", "Observation", "_include:recurse", "Observation:encounter",
         (Include("Observation", "encounter", None, True),), ()),
        ("_revinclude", "Patient", "_revinclude", "Observation:patient",
         (), (Include("Observation", "patient", None, False),)),
        ("_revinclude with target type", "Patient", "_revinclude", "Provenance:target:Patient",
         (), (Include("Provenance", "target", "Patient", False),)),
    ],
)  # fmt: skip
def test_includes(_case, resource_type, key, value, includes, revincludes):
    query = parse_search(resource_type, [(key, value), (key, value)], strict=True)
    assert (query.includes, query.revincludes) == (includes, revincludes)


# -- lenient and strict ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "resource_type", "key", "value", "ignored"),
    [
        ("_unknown parameter", "Observation", "shoe-size", "42", "shoe-size"),
        ("_unsupported common parameter", "Observation", "_tag", "x", "_tag"),
        ("_reverse chaining", "Observation", "_has:Observation:patient:code", "x", "_has:Observation:patient:code"),
        ("_token :text", "Observation", "code:text", "pulse", "code:text"),
        ("_token :below", "Observation", "code:below", "x", "code:below"),
        ("_date :exact", "Observation", "date:exact", "2020", "date:exact"),
        ("_reference :identifier", "Observation", "subject:identifier", "x|1", "subject:identifier"),
        ("_reference to a type it cannot point to", "Observation", "patient:Group", "1", "patient:Group"),
        ("_two-level chain", "Observation", "patient.organization.name", "x", "patient.organization.name"),
        ("_chain on a token", "Observation", "code.name", "x", "code.name"),
        ("_chain to a missing parameter", "Observation", "patient.shoe-size", "x", "patient.shoe-size"),
        ("_type parameter on a system search", None, "name", "x", "name"),
        ("_include of an unknown parameter", "Observation", "_include", "Observation:shoe",
         "_include=Observation:shoe"),
        ("_include of a non-reference", "Observation", "_include", "Observation:code", "_include=Observation:code"),
        ("_include from another type", "Observation", "_include", "Patient:organization",
         "_include=Patient:organization"),
        ("_include to a type it cannot point to", "Observation", "_include", "Observation:patient:Group",
         "_include=Observation:patient:Group"),
        ("_include modifier", "Observation", "_include:deep", "Observation:patient", "_include:deep"),
    ],
)  # fmt: skip
def test_unsupported_is_ignored_or_strict_error(_case, resource_type, key, value, ignored):
    query = parse_search(resource_type, [(key, value), (key, value)])
    assert query.ignored == (ignored,)
    assert query.clauses == query.includes == ()
    with pytest.raises(SearchError) as raised:
        parse_search(resource_type, [(key, value)], strict=True)
    assert raised.value.param == key


@pytest.mark.parametrize(
    ("_case", "resource_type", "key", "value"),
    [
        ("_bad date", "Patient", "birthdate", "yesterday"),
        ("_bad month", "Patient", "birthdate", "2020-13"),
        ("_unknown prefix", "Patient", "birthdate", "xx2020"),
        ("_upper-case prefix", "Patient", "birthdate", "GE2020"),
        ("_prefix without date", "Patient", "birthdate", "ge"),
        ("_bad lastUpdated", "Patient", "_lastUpdated", "2020-01-01T25:00:00Z"),
        ("_bad quantity", "Observation", "value-quantity", "5_000"),
        ("_quantity not a number", "Observation", "value-quantity", "abc"),
        ("_quantity with two parts", "Observation", "value-quantity", "5|mg"),
        ("_quantity out of range", "Observation", "value-quantity", "1e30"),
        ("_token with three parts", "Observation", "code", "a|b|c"),
        ("_token with a lone bar", "Observation", "code", "|"),
        ("_missing not boolean", "Observation", "code:missing", "maybe"),
        ("_malformed reference", "Observation", "subject", "Patient/"),
        ("_reference of the wrong type", "Observation", "subject:Patient", "Group/1"),
        ("_ambiguous chain", "Observation", "subject.name", "x"),
        ("_count not a number", "Observation", "_count", "many"),
        ("_negative count", "Observation", "_count", "-1"),
        ("_count modifier", "Observation", "_count:x", "1"),
        ("_bad offset", "Observation", "_offset", "1.5"),
        ("_bad total", "Observation", "_total", "maybe"),
        ("_bad summary", "Observation", "_summary", "all"),
        ("_bad element", "Observation", "_elements", "1st"),
        ("_bad include", "Observation", "_include", "Observation"),
        ("_unknown sort", "Observation", "_sort", "shoe-size"),
        ("_sort by a reference", "Observation", "_sort", "subject"),
        ("_sort modifier", "Observation", "_sort:desc", "date"),
        ("_sort by a type parameter in a system search", None, "_sort", "date"),
    ],
)
def test_invalid_values_are_errors_even_when_lenient(_case, resource_type, key, value):
    with pytest.raises(SearchError) as raised:
        parse_search(resource_type, [(key, value)])
    assert raised.value.param == key
    assert raised.value.message == str(raised.value)


# -- granular scope constraints -------------------------------------------------------------------------------


def test_constraints_are_filter_clauses():
    clauses = parse_constraints(
        "Observation", [("category", f"{OBS_CATEGORY}|laboratory"), ("status", "final")]
    )
    assert [(clause.param.name, clause.values) for clause in clauses] == [
        ("category", (TokenQuery(OBS_CATEGORY, "laboratory"),)),
        ("status", (TokenQuery(None, "final"),)),
    ]


@pytest.mark.parametrize(
    ("_case", "key", "value"),
    [
        ("_unknown parameter", "shoe-size", "1"),
        ("_unsupported modifier", "code:text", "x"),
        ("_result parameter", "_count", "5"),
        ("_view parameter", "_format", "json"),
        ("_invalid value", "date", "soon"),
    ],
)
def test_constraints_are_strict(_case, key, value):
    with pytest.raises(SearchError) as raised:
        parse_constraints("Observation", [(key, value)])
    assert raised.value.param == key


# -- approximate ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("_case", "now", "expected_margin"),
    [
        (
            "_10% of the gap to now",
            utc(2030, 3, 5),
            (utc(2030, 3, 5) - utc(2020, 3, 4, 23, 59, 59, END)) / 10,
        ),
        ("_gap before the date", utc(2010, 3, 4), (utc(2020, 3, 4) - utc(2010, 3, 4)) / 10),
        ("_at least a day", utc(2020, 3, 5), timedelta(days=1)),
        ("_now inside the range", utc(2020, 3, 4, 12), timedelta(days=1)),
    ],
)
def test_date_approximately(_case, now, expected_margin):
    (clause,) = parse_search("Observation", [("date", "ap2020-03-04")]).clauses
    low, high = clause.values[0].approximate(now)
    assert (low, high) == (
        utc(2020, 3, 4) - expected_margin,
        utc(2020, 3, 4, 23, 59, 59, END) + expected_margin,
    )


@pytest.mark.parametrize(
    ("_case", "value", "expected"),
    [
        ("_10% either side", "ap100", (Decimal("90"), Decimal("110"))),
        ("_never narrower than the precision", "ap0", (Decimal("-0.5"), Decimal("0.5"))),
    ],
)
def test_quantity_approximately(_case, value, expected):
    (clause,) = parse_search("Observation", [("value-quantity", value)]).clauses
    assert clause.values[0].approximate() == expected
