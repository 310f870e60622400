"""Provides the grant the FHIR API enforces and the policy that turns it into SQL-ready access filters.

Pure module (no Django): the authentication class of whatever authorization server is plugged in (smart/ by
default) builds a `Grant` from a bearer token; `BaseAccessPolicy.decide` answers, for one resource type and one
interaction, whether it is allowed at all and under which filters (OR-ed), which the store applies inside SQL.

Interactions use the FHIR R4 labels (http.html); permission letters follow SMART App Launch 2.x
"Scopes and Launch Context": c = create, r = read/vread/instance history, u = update/patch, d = delete,
s = type/system search and history.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class Interaction(StrEnum):
    READ = "read"
    VREAD = "vread"
    HISTORY_INSTANCE = "history-instance"
    SEARCH_TYPE = "search-type"
    HISTORY_TYPE = "history-type"
    SEARCH_SYSTEM = "search-system"
    HISTORY_SYSTEM = "history-system"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"


PERMISSION_FOR: dict[Interaction, str] = {
    Interaction.READ: "r",
    Interaction.VREAD: "r",
    Interaction.HISTORY_INSTANCE: "r",
    Interaction.SEARCH_TYPE: "s",
    Interaction.HISTORY_TYPE: "s",
    Interaction.SEARCH_SYSTEM: "s",
    Interaction.HISTORY_SYSTEM: "s",
    Interaction.CREATE: "c",
    Interaction.UPDATE: "u",
    Interaction.PATCH: "u",
    Interaction.DELETE: "d",
}


class Context(StrEnum):
    """The level of a clinical scope: `patient/`, `user/` or `system/`."""

    PATIENT = "patient"
    USER = "user"
    SYSTEM = "system"


@dataclass(frozen=True)
class ScopeRule:
    """One clinical scope, e.g. `patient/Observation.rs?category=...|vital-signs`."""

    context: Context
    resource_type: str  # a FHIR type, or "*"
    permissions: frozenset[str]  # letters of "cruds"
    constraints: tuple[tuple[str, str], ...] = ()  # granular search parameters, all must match

    def covers(self, resource_type: str, permission: str) -> bool:
        return self.resource_type in ("*", resource_type) and permission in self.permissions


@dataclass(frozen=True)
class Grant:
    """What a bearer token allows: its clinical scope rules plus the launch context it carries."""

    rules: tuple[ScopeRule, ...]
    patient_id: str | None = None
    encounter_id: str | None = None
    fhir_user: str | None = None  # relative reference of the user's resource: "Practitioner/x", "Patient/y"
    client_id: str | None = None
    user_id: int | None = None
    scope: str = ""  # the raw granted scope string, for diagnostics
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class AccessFilter:
    """One way a resource may be reached: inside a patient's compartment (or anywhere) and matching constraints."""

    patient_id: str | None = None
    constraints: tuple[tuple[str, str], ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.patient_id is None and not self.constraints


@dataclass(frozen=True)
class AccessDecision:
    """Whether an interaction on a type is covered at all, and the filters (OR-ed) that limit it."""

    allowed: bool
    filters: tuple[AccessFilter, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.allowed and any(f.unrestricted for f in self.filters)


DENIED = AccessDecision(allowed=False)
UNRESTRICTED = AccessDecision(allowed=True, filters=(AccessFilter(),))

# Types that belong to the Patient compartment (FHIR R4 compartmentdefinition-patient). A patient/ scope on a
# type outside it (Practitioner, Organization, Location, Medication, ...) reads shared reference data, unconfined.
PATIENT_COMPARTMENT_TYPES = frozenset(
    {
        "Patient",
        "AllergyIntolerance",
        "CarePlan",
        "CareTeam",
        "Condition",
        "Coverage",
        "DetectedIssue",
        "Device",
        "DeviceRequest",
        "DeviceUseStatement",
        "DiagnosticReport",
        "DocumentReference",
        "Encounter",
        "ExplanationOfBenefit",
        "FamilyMemberHistory",
        "Flag",
        "Goal",
        "Group",
        "ImagingStudy",
        "Immunization",
        "ImmunizationRecommendation",
        "List",
        "MedicationAdministration",
        "MedicationDispense",
        "MedicationRequest",
        "MedicationStatement",
        "Observation",
        "Procedure",
        "Provenance",
        "QuestionnaireResponse",
        "RelatedPerson",
        "ServiceRequest",
        "Specimen",
        "Consent",
        "Composition",
        "Communication",
        "CommunicationRequest",
        "RiskAssessment",
        "NutritionOrder",
        "Media",
        "ClinicalImpression",
        "Claim",
        "Account",
        "AdverseEvent",
        "Basic",
        "BodyStructure",
        "ChargeItem",
        "AuditEvent",
        "EpisodeOfCare",
        "Invoice",
        "MolecularSequence",
        "Schedule",
        "VisionPrescription",
        "SupplyRequest",
        "SupplyDelivery",
        "ResearchSubject",
        "RequestGroup",
        "Appointment",
        "AppointmentResponse",
    }
)


class BaseAccessPolicy:
    """Decides what a grant may do. Subclass and name it in FHIRAPI["ACCESS_POLICY_CLASS"]."""

    def decide(self, grant: Grant, resource_type: str, interaction: Interaction) -> AccessDecision:
        raise NotImplementedError

    def user_compartment(self, grant: Grant) -> str | None:
        """The patient a `user/` scope is confined to, or None when the user may see every patient.

        Default: a user whose FHIR identity is a Patient sees only their own compartment; any other user
        (a Practitioner) sees every patient.
        """
        if grant.fhir_user and grant.fhir_user.startswith("Patient/"):
            return grant.fhir_user.split("/", 1)[1]
        return None


class SmartScopePolicy(BaseAccessPolicy):
    """SMART App Launch scopes: each matching rule adds one filter (its context's confinement + constraints)."""

    def decide(self, grant: Grant, resource_type: str, interaction: Interaction) -> AccessDecision:
        permission = PERMISSION_FOR[interaction]
        filters: list[AccessFilter] = []
        for rule in grant.rules:
            if not rule.covers(resource_type, permission):
                continue
            reachable, patient_id = self._confinement(grant, rule.context, resource_type)
            if reachable:
                filters.append(AccessFilter(patient_id=patient_id, constraints=rule.constraints))
        if not filters:
            return DENIED
        if any(f.unrestricted for f in filters):
            return UNRESTRICTED
        return AccessDecision(allowed=True, filters=tuple(dict.fromkeys(filters)))

    def _confinement(self, grant: Grant, context: Context, resource_type: str) -> tuple[bool, str | None]:
        """(whether the rule reaches anything, the patient compartment it is confined to or None)."""
        if context is Context.SYSTEM:
            return True, None
        if context is Context.USER:
            patient_id = self.user_compartment(grant)
        elif grant.patient_id:
            patient_id = grant.patient_id
        else:
            return False, None  # patient/ scopes need a patient in context; without one they reach nothing
        return True, patient_id if resource_type in PATIENT_COMPARTMENT_TYPES else None
