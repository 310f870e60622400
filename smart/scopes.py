"""Provides the SMART clinical scope grammar (v1 and v2), scope negotiation and consent-screen wording.

Pure module (stdlib only). Follows SMART App Launch 2.x "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):

- clinical scopes are `(patient|user|system)/(ResourceType|*).(permissions)[?param=value&...]`, where the
  permissions are an in-order, non-empty subset of `cruds` (v2) or one of the v1 suffixes `read` (= `rs`),
  `write` (= `cud`) and `*` (= `cruds`); out-of-order (`.dus`) or repeated letters are not a scope;
- a query suffix narrows a scope to resources matching every `param=value` (granular scopes);
- scopes compound: `Observation.rs` is interchangeable with `Observation.r Observation.s` (Scope Equivalence);
- launch-context and identity scopes (`launch`, `launch/patient`, `openid`, `fhirUser`, ...) are plain names.

Anything else is *unknown*: it is dropped, never an error, as the IG allows ("MAY be ignored").
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from urllib.parse import parse_qsl, quote

from fhirapi.access import Context, ScopeRule

Constraints = tuple[tuple[str, str], ...]  # granular query pairs, all must match

PERMISSION_ORDER = "cruds"
V1_PERMISSIONS: dict[str, str] = {"read": "rs", "write": "cud", "*": "cruds"}
V1_SUFFIXES: dict[str, str] = {letters: suffix for suffix, letters in V1_PERMISSIONS.items()}

# Launch-context and identity scopes we know; any other `launch/<type>` is unknown here.
LAUNCH_SCOPES = frozenset(
    {
        "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter", "offline_access",
        "online_access",
    }
)  # fmt: skip

# The query may hold only RFC 6749 §3.3 scope-token characters (printable ASCII but space, `"` and `\`).
_CLINICAL_SCOPE = re.compile(
    r"(?P<context>patient|user|system)/(?P<type>[A-Z][A-Za-z]+|\*)"
    r"\.(?P<permissions>read|write|\*|[cruds]+)(?:\?(?P<query>[\x21\x23-\x5b\x5d-\x7e]+))?"
)

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"

# The granular sub-scopes a consent screen offers in place of a whole type (US Core / ONC g10 categories).
CATEGORY_SUBSCOPES: dict[str, tuple[tuple[str, str], ...]] = {  # type -> (system, code)
    "Observation": (
        *((OBSERVATION_CATEGORY, code) for code in (
            "laboratory", "social-history", "vital-signs", "survey", "imaging", "exam", "procedure",
            "therapy", "activity",
        )),
        (US_CORE_CATEGORY, "sdoh"),
    ),
    "Condition": (
        (CONDITION_CATEGORY, "problem-list-item"),
        (CONDITION_CATEGORY, "encounter-diagnosis"),
        (US_CORE_CONDITION_CATEGORY, "health-concern"),
    ),
}  # fmt: skip


class ScopeVersion(IntEnum):
    """Which permission syntax a clinical scope was written in."""

    V1 = 1  # .read / .write / .*
    V2 = 2  # letters of "cruds"


@dataclass(frozen=True)
class ClinicalScope:
    """One well-formed clinical scope, e.g. `patient/Observation.rs?category=...|vital-signs`."""

    context: Context
    resource_type: str  # a FHIR type, or "*"
    permissions: str  # canonical ordered subset of "cruds"
    constraints: Constraints  # percent-decoded granular query, all must match
    version: ScopeVersion
    raw: str  # the scope string exactly as given

    def to_rule(self) -> ScopeRule:
        """The rule fhirapi's access policy enforces for this scope."""
        return ScopeRule(self.context, self.resource_type, frozenset(self.permissions), self.constraints)

    def reaches(self, other: "ClinicalScope") -> bool:
        """Whether this scope's context, type and constraints include everything `other` addresses."""
        return (
            self.context is other.context
            and self.resource_type in ("*", other.resource_type)
            and set(self.constraints) <= set(other.constraints)
        )

    def covers(self, other: "ClinicalScope") -> bool:
        """Whether this scope alone grants everything `other` asks for.

        A constraint-free scope covers a constrained one, never the reverse; `*` covers any type.
        """
        return self.reaches(other) and set(other.permissions) <= set(self.permissions)


@dataclass(frozen=True)
class ScopeSet:
    """A parsed scope string: clinical scopes, known launch/identity scopes, and the unknown rest."""

    clinical: tuple[ClinicalScope, ...]
    launch: frozenset[str]
    unknown: tuple[str, ...]
    ordered: tuple[str, ...] = field(default=(), compare=False)  # the known scopes in request order

    def rules(self) -> tuple[ScopeRule, ...]:
        """The access rules of the clinical scopes, duplicates removed."""
        return tuple(dict.fromkeys(scope.to_rule() for scope in self.clinical))

    def has(self, name: str) -> bool:
        """Whether `name` (e.g. `launch`, `openid`, or a clinical scope string) was given and is known."""
        return name in self.launch or any(scope.raw == name for scope in self.clinical)

    def to_string(self) -> str:
        """The known scopes, space-joined in their original order."""
        if self.ordered:
            return " ".join(self.ordered)
        return " ".join([*sorted(self.launch), *(scope.raw for scope in self.clinical)])

    @property
    def contexts(self) -> frozenset[Context]:
        return frozenset(scope.context for scope in self.clinical)


# Apps send the same few scope strings on every request, and the answer is immutable: parse each once per
# process (bounded, so strings an attacker varies cannot grow it).
@lru_cache(maxsize=4096)
def parse_scope(scope: str) -> ClinicalScope | None:
    """Parse one clinical scope; None when `scope` is not a well-formed clinical scope."""
    match = _CLINICAL_SCOPE.fullmatch(scope)
    if match is None:
        return None
    permissions = _permissions(match["permissions"])
    constraints = _constraints(match["query"])
    if permissions is None or constraints is None:
        return None
    version = ScopeVersion.V1 if match["permissions"] in V1_PERMISSIONS else ScopeVersion.V2
    return ClinicalScope(Context(match["context"]), match["type"], permissions, constraints, version, scope)


def _permissions(suffix: str) -> str | None:
    letters = V1_PERMISSIONS.get(suffix, suffix)
    # Rebuilding in "cruds" order rejects out-of-order and repeated letters alike.
    return letters if _ordered(letters) == letters else None


def _ordered(letters: Iterable[str]) -> str:
    wanted = set(letters)
    return "".join(letter for letter in PERMISSION_ORDER if letter in wanted)


def _constraints(query: str | None) -> Constraints | None:
    if query is None:
        return ()
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=True)
    except ValueError:
        return None
    # A blank value is silently dropped by parse_qsl; accepting it would widen the scope.
    if len(pairs) != query.count("&") + 1 or any(not name for name, _ in pairs):
        return None
    return tuple(pairs)


def _tokens(scopes: str | Iterable[str]) -> list[str]:
    """Whitespace-split scopes, empty strings ignored, duplicates removed, order kept."""
    items = [scopes] if isinstance(scopes, str) else scopes
    return list(dict.fromkeys(token for item in items for token in item.split()))


def parse_scopes(scope_string: str | Iterable[str]) -> ScopeSet:
    """Parse a space-separated scope string (or strings) into a `ScopeSet`; unknown scopes are set aside."""
    clinical: list[ClinicalScope] = []
    launch: list[str] = []
    unknown: list[str] = []
    tokens = _tokens(scope_string)
    for token in tokens:
        scope = parse_scope(token)
        if scope is not None:
            clinical.append(scope)
        elif token in LAUNCH_SCOPES:
            launch.append(token)
        else:
            unknown.append(token)
    ordered = tuple(token for token in tokens if token not in set(unknown))
    return ScopeSet(tuple(clinical), frozenset(launch), tuple(unknown), ordered)


def is_known_scope(scope: str) -> bool:
    """Whether `scope` is a launch/identity scope or a well-formed clinical scope."""
    return scope in LAUNCH_SCOPES or parse_scope(scope) is not None


def _clinical(scopes: Iterable[str]) -> list[ClinicalScope]:
    return [scope for scope in map(parse_scope, scopes) if scope is not None]


def scope_covered(requested: str, allowed: str | Iterable[str]) -> bool:
    """Whether `allowed` (e.g. a client's registered scopes) permits all of `requested`.

    Letters may come from different allowed scopes (`patient/Observation.r patient/*.s` covers
    `patient/Observation.rs`); v1 and v2 forms are equivalent; launch scopes match by equality.
    """
    return narrow_scope(requested, allowed) == requested


def narrow_scope(requested: str, allowed: str | Iterable[str]) -> str | None:
    """The most of `requested`'s permissions that `allowed` grants, on `requested`'s own type and constraints.

    Returns `requested` unchanged (a v1 form included) when fully covered, the v2 form with the granted
    letters when partly covered, and None when nothing is (or `requested` is unknown).
    """
    allowed_tokens = _tokens(allowed)
    if requested in LAUNCH_SCOPES:
        return requested if requested in allowed_tokens else None
    scope = parse_scope(requested)
    if scope is None:
        return None
    narrowed = _narrow(scope, _clinical(allowed_tokens))
    return narrowed.raw if narrowed is not None else None


def _narrow(scope: ClinicalScope, allowed: list[ClinicalScope]) -> ClinicalScope | None:
    reaching = [a for a in allowed if a.reaches(scope)]
    granted = _ordered(p for p in scope.permissions if any(p in a.permissions for a in reaching))
    return _derive(scope, scope.resource_type, granted, scope.constraints, _query(scope)) if granted else None


def _query(scope: ClinicalScope) -> str:
    return scope.raw.partition("?")[2]


def _encode_query(constraints: Constraints) -> str:
    return "&".join(f"{quote(name, safe=':')}={quote(value, safe=':/|,')}" for name, value in constraints)


def _derive(
    base: ClinicalScope, resource_type: str, permissions: str, constraints: Constraints, query: str
) -> ClinicalScope:
    """`base` narrowed to a type, letters and constraints; keeps `base`'s v1 form while its letters last."""
    if (resource_type, permissions, constraints) == (base.resource_type, base.permissions, base.constraints):
        return base
    version = base.version if permissions == base.permissions else ScopeVersion.V2
    suffix = V1_SUFFIXES[permissions] if version is ScopeVersion.V1 else permissions
    raw = f"{base.context}/{resource_type}.{suffix}" + (f"?{query}" if query else "")
    return ClinicalScope(base.context, resource_type, permissions, constraints, version, raw)


def _intersection(requested: ClinicalScope, allowed: ClinicalScope) -> ClinicalScope | None:
    """What both scopes grant (the narrower type, the common letters, all constraints), if anything."""
    if requested.context is not allowed.context:
        return None
    if allowed.resource_type in ("*", requested.resource_type):
        resource_type = requested.resource_type
    elif requested.resource_type == "*":
        resource_type = allowed.resource_type
    else:
        return None
    permissions = _ordered(set(requested.permissions) & set(allowed.permissions))
    if not permissions:
        return None
    constraints, query = _merge_constraints(requested, allowed)
    return _derive(requested, resource_type, permissions, constraints, query)


def _merge_constraints(first: ClinicalScope, second: ClinicalScope) -> tuple[Constraints, str]:
    if set(second.constraints) <= set(first.constraints):
        return first.constraints, _query(first)
    if not first.constraints:
        return second.constraints, _query(second)
    merged = first.constraints + tuple(c for c in second.constraints if c not in first.constraints)
    return merged, _encode_query(merged)


def _minimal(scopes: list[ClinicalScope]) -> list[ClinicalScope]:
    """Drop scopes another one covers (of two equivalent scopes, the first stays)."""

    def redundant(index: int, scope: ClinicalScope) -> bool:
        return any(
            other.covers(scope) and (j < index or not scope.covers(other))
            for j, other in enumerate(scopes)
            if j != index
        )

    return [scope for index, scope in enumerate(scopes) if not redundant(index, scope)]


def _grant(token: str, allowed_tokens: list[str], allowed: list[ClinicalScope]) -> list[str]:
    if token in LAUNCH_SCOPES:
        return [token] if token in allowed_tokens else []
    scope = parse_scope(token)
    if scope is None:
        return []
    candidates = [_narrow(scope, allowed), *(_intersection(scope, a) for a in allowed)]
    return [granted.raw for granted in _minimal([c for c in candidates if c is not None])]


def intersect_scopes(requested: str | Iterable[str], allowed: str | Iterable[str]) -> list[str]:
    """The scopes to grant: each requested scope narrowed to what `allowed` permits, in order, de-duplicated.

    Besides `narrow_scope`, a requested scope that is broader than an allowed one yields their intersection:
    `patient/*.rs` against allowed `patient/Observation.rs` grants `patient/Observation.rs`. Unknown and
    ungrantable scopes are dropped.
    """
    return list(_intersect(tuple(_tokens(requested)), tuple(_tokens(allowed))))


@lru_cache(maxsize=1024)  # an app asks for the same scopes against the same registration at every launch
def _intersect(requested: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
    allowed_tokens = list(allowed)
    allowed_clinical = _clinical(allowed_tokens)
    granted = (g for token in requested for g in _grant(token, allowed_tokens, allowed_clinical))
    return tuple(dict.fromkeys(granted))


def to_v1(scope: ClinicalScope) -> str | None:
    """The v1 spelling of `scope` (`rs` -> `read`, `cud` -> `write`, `cruds` -> `*`), or None if none."""
    suffix = V1_SUFFIXES.get(scope.permissions)
    if suffix is None:
        return None
    query = _query(scope)
    return f"{scope.context}/{scope.resource_type}.{suffix}" + (f"?{query}" if query else "")


def category_subscopes(scope: str) -> list[str]:
    """The granular category scopes a consent screen offers instead of a whole Observation or Condition scope.

    Only for an unconstrained `patient/` or `user/` scope on Observation or Condition that includes `r` or
    `s`; each sub-scope keeps those letters (v2 form). Anything else has no sub-scopes.
    """
    parsed = parse_scope(scope)
    if parsed is None or parsed.context is Context.SYSTEM or parsed.constraints:
        return []
    letters = _ordered(set(parsed.permissions) & {"r", "s"})
    categories = CATEGORY_SUBSCOPES.get(parsed.resource_type, ())
    if not letters:
        return []
    prefix = f"{parsed.context}/{parsed.resource_type}.{letters}?category="
    return [f"{prefix}{system}|{code}" for system, code in categories]


# Consent-screen wording ------------------------------------------------------------------------------------

LAUNCH_DESCRIPTIONS: dict[str, str] = {
    "openid": "Know who you are",
    "fhirUser": "Know who you are",
    "profile": "Know who you are",
    "launch": "Open with the patient and encounter in context",
    "launch/patient": "Open with the patient you choose",
    "launch/encounter": "Open with the encounter in context",
    "offline_access": "Keep access when you are not using the app (until you revoke it)",
    "online_access": "Keep access while you are using the app",
}

PERMISSION_VERBS: tuple[tuple[str, str], ...] = (
    ("r", "read"),
    ("s", "search"),
    ("c", "create"),
    ("u", "update"),
    ("d", "delete"),
)

TYPE_NAMES: dict[str, str] = {
    "Observation": "observations (vital signs, labs and other results)",
    "Condition": "conditions (problems and diagnoses)",
    "MedicationRequest": "medication orders",
    "MedicationStatement": "medication lists",
    "MedicationDispense": "medication dispenses",
    "MedicationAdministration": "medications given",
    "Medication": "medications",
    "AllergyIntolerance": "allergies",
    "Patient": "demographics",
    "Encounter": "visits and encounters",
    "Procedure": "procedures",
    "Immunization": "immunizations",
    "DiagnosticReport": "diagnostic reports",
    "DocumentReference": "clinical documents and notes",
    "CarePlan": "care plans",
    "CareTeam": "care teams",
    "Goal": "goals",
    "Device": "implanted devices",
    "Practitioner": "clinicians",
    "PractitionerRole": "clinician roles",
    "Organization": "organizations",
    "Location": "locations",
    "Provenance": "record history (provenance)",
    "ServiceRequest": "orders and referrals",
    "Coverage": "insurance coverage",
    "RelatedPerson": "related people",
    "QuestionnaireResponse": "questionnaire answers",
    "Specimen": "specimens",
    "Appointment": "appointments",
}

CATEGORY_NAMES: dict[str, str] = {
    "laboratory": "lab results",
    "social-history": "social history",
    "vital-signs": "vital signs",
    "survey": "survey answers",
    "imaging": "imaging results",
    "exam": "exam findings",
    "procedure": "procedure results",
    "therapy": "therapy results",
    "activity": "physical activity",
    "sdoh": "social needs (social determinants of health)",
    "problem-list-item": "problem list",
    "encounter-diagnosis": "encounter diagnoses",
    "health-concern": "health concerns",
}


def describe_scope(scope: str) -> str:
    """Plain words for `scope` on a consent screen; an unknown scope is returned as is.

    `patient/` scopes speak of "your" data, `user/` scopes of "patients'" data ("all data you can access"),
    `system/` scopes of "all" data; a known category names the data instead of its type, e.g.
    `user/*.cruds` -> "Read, search, create, update and delete all data you can access".
    """
    if scope in LAUNCH_DESCRIPTIONS:
        return LAUNCH_DESCRIPTIONS[scope]
    parsed = parse_scope(scope)
    if parsed is None:
        return scope
    return f"{_verbs(parsed.permissions)} {_subject(parsed)}{_constraint_note(parsed)}"


def _verbs(permissions: str) -> str:
    verbs = [verb for letter, verb in PERMISSION_VERBS if letter in permissions]
    phrase = verbs[0] if len(verbs) == 1 else f"{', '.join(verbs[:-1])} and {verbs[-1]}"
    return phrase.capitalize()


def _subject(scope: ClinicalScope) -> str:
    category = _category(scope)
    if category is None and scope.resource_type == "*":
        return {
            Context.PATIENT: "all your data",
            Context.USER: "all data you can access",
            Context.SYSTEM: "all data",
        }[scope.context]
    noun = category or TYPE_NAMES.get(scope.resource_type) or _split_camel_case(scope.resource_type)
    owner = {Context.PATIENT: "your", Context.USER: "patients'", Context.SYSTEM: "all"}[scope.context]
    return f"{owner} {noun}"


def _category(scope: ClinicalScope) -> str | None:
    """The friendly name of the scope's first `category` constraint, when we know that category."""
    codes = [value.rpartition("|")[2] for name, value in scope.constraints if name == "category"]
    return CATEGORY_NAMES.get(codes[0]) if codes else None


def _constraint_note(scope: ClinicalScope) -> str:
    """The constraints the subject does not already say, e.g. ", only where code:in is http://..."."""
    rest = list(scope.constraints)
    if _category(scope) is not None:
        rest.remove(next(c for c in rest if c[0] == "category"))
    return f", only where {' and '.join(f'{name} is {value}' for name, value in rest)}" if rest else ""


def _split_camel_case(name: str) -> str:
    return " ".join(re.findall(r"[A-Z][a-z]*", name)).lower()
