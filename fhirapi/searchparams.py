"""Provides the search parameters the server supports, per resource type (FHIR R4 search parameter registry).

Pure module (no Django). Each `SearchParam` names its type and the element paths its values come from, in a
small FHIRPath subset (see fhirapi.indexing). Common parameters (`_id`, `_lastUpdated`) are answered from the
resource table's own columns and are not indexed.

Names, types, paths and reference targets follow the R4 (4.0.1) SearchParameter definitions
(https://hl7.org/fhir/R4/searchparameter-registry.html), translated to the path subset:

- `X.subject.where(resolve() is Patient)` becomes the path `X.subject` with `targets=("Patient",)`;
- `(X.value as Quantity)` and `X.onset.as(dateTime)` become `X.value.ofType(Quantity)` and
  `X.onset.ofType(dateTime)`;
- a reference parameter that may point to any resource type has empty `targets`.

Composite and special parameters (`code-value-quantity`, Location `near`) and phonetic matching are not
supported. Four US Core parameters that R4 lacks are added and say so in their description. The Patient
compartment table follows https://hl7.org/fhir/R4/compartmentdefinition-patient.html.
"""

from dataclasses import dataclass
from enum import StrEnum


class ParamType(StrEnum):
    TOKEN = "token"
    STRING = "string"
    DATE = "date"
    REFERENCE = "reference"
    QUANTITY = "quantity"
    URI = "uri"
    NUMBER = "number"


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type, e.g. Observation `date` over `Observation.effective`."""

    name: str
    type: ParamType
    paths: tuple[str, ...] = ()  # e.g. ("Observation.effective",) -- choice types are named without [x]
    targets: tuple[str, ...] = ()  # reference params: the resource types a reference may point to
    description: str = ""

    @property
    def is_column(self) -> bool:
        """True for parameters answered from the resource table itself (`_id`, `_lastUpdated`)."""
        return self.name in ("_id", "_lastUpdated")


COMMON_PARAMS: dict[str, SearchParam] = {
    "_id": SearchParam("_id", ParamType.TOKEN, ("Resource.id",), description="Logical id of the resource"),
    "_lastUpdated": SearchParam(
        "_lastUpdated",
        ParamType.DATE,
        ("Resource.meta.lastUpdated",),
        description="When the resource last changed",
    ),
}

_TOKEN = ParamType.TOKEN
_STRING = ParamType.STRING
_DATE = ParamType.DATE
_REF = ParamType.REFERENCE
_QTY = ParamType.QUANTITY
_URI = ParamType.URI

_PATIENT = ("Patient",)
_GROUP_PATIENT = ("Group", "Patient")
_ENCOUNTER = ("Encounter",)
_ENCOUNTER_EPISODE = ("Encounter", "EpisodeOfCare")
_ORGANIZATION = ("Organization",)
_LOCATION = ("Location",)
_PRACTITIONER_ORG = ("Practitioner", "Organization", "PractitionerRole")
_ASSERTER = ("Practitioner", "Patient", "PractitionerRole", "RelatedPerson")
_AUTHOR = ("Practitioner", "Organization", "Device", "Patient", "PractitionerRole", "RelatedPerson")
_TEAM_MEMBER = ("Practitioner", "Organization", "CareTeam", "Patient", "PractitionerRole", "RelatedPerson")
_INTERPRETER = ("Practitioner", "Organization", "CareTeam", "PractitionerRole")
_DEFINITION = ("Questionnaire", "Measure", "PlanDefinition", "OperationDefinition", "ActivityDefinition")
_ANY: tuple[str, ...] = ()  # any resource type
_ASSERTED_DATE_URL = "http://hl7.org/fhir/StructureDefinition/condition-assertedDate"


def _p(
    name: str, type_: ParamType, expression: str, description: str, targets: tuple[str, ...] = ()
) -> SearchParam:
    """One parameter; `expression` lists its paths separated by " | ", as R4 SearchParameter.expression."""
    return SearchParam(name, type_, tuple(expression.split(" | ")), targets, description)


def _params(*params: SearchParam) -> dict[str, SearchParam]:
    return {param.name: param for param in params}


def _address_params(rt: str) -> tuple[SearchParam, ...]:
    return (
        _p("address", _STRING, f"{rt}.address", "Any string field of an address (line, city, state, ...)"),
        _p("address-city", _STRING, f"{rt}.address.city", "A city specified in an address"),
        _p("address-country", _STRING, f"{rt}.address.country", "A country specified in an address"),
        _p(
            "address-postalcode", _STRING, f"{rt}.address.postalCode", "A postal code specified in an address"
        ),
        _p("address-state", _STRING, f"{rt}.address.state", "A state specified in an address"),
        _p("address-use", _TOKEN, f"{rt}.address.use", "A use code specified in an address"),
    )


def _telecom_params(rt: str) -> tuple[SearchParam, ...]:
    return (
        _p("telecom", _TOKEN, f"{rt}.telecom", "The value in any kind of telecom details"),
        _p("email", _TOKEN, f"{rt}.telecom.where(system='email')", "A value in an email contact"),
        _p("phone", _TOKEN, f"{rt}.telecom.where(system='phone')", "A value in a phone contact"),
    )


def _human_name_params(rt: str) -> tuple[SearchParam, ...]:
    return (
        _p(
            "name",
            _STRING,
            f"{rt}.name",
            "Any string field of a HumanName (family, given, prefix, suffix, text)",
        ),
        _p("family", _STRING, f"{rt}.name.family", "A portion of the family name"),
        _p("given", _STRING, f"{rt}.name.given", "A portion of the given name"),
    )


# The tables below keep one parameter per line or two, as the R4 registry lists them.
# fmt: off
# Longer reference target lists, named once (R4 SearchParameter.target).
_OBSERVATION_BASIS = (
    "CarePlan", "MedicationRequest", "NutritionOrder", "DeviceRequest", "ServiceRequest",
    "ImmunizationRecommendation",
)
_OBSERVATION_PART_OF = (
    "Immunization", "MedicationDispense", "MedicationAdministration", "Procedure", "ImagingStudy",
    "MedicationStatement",
)
_OBSERVATION_SOURCES = (
    "Media", "Observation", "ImagingStudy", "MolecularSequence", "QuestionnaireResponse", "DocumentReference",
)
_PERFORMER = (
    "Practitioner", "Organization", "CareTeam", "Device", "Patient", "PractitionerRole", "RelatedPerson",
)
_CARE_PLAN_ACTIVITY = (
    "Appointment", "MedicationRequest", "Task", "NutritionOrder", "RequestGroup", "VisionPrescription",
    "DeviceRequest", "ServiceRequest", "CommunicationRequest",
)
_CARE_PLAN_PERFORMER = (
    "Practitioner", "Organization", "CareTeam", "Device", "Patient", "HealthcareService", "PractitionerRole",
    "RelatedPerson",
)
_GROUP_MEMBER = ("Practitioner", "Group", "Device", "Medication", "Patient", "Substance", "PractitionerRole")

_PATIENT_PARAMS = _params(
    _p("identifier", _TOKEN, "Patient.identifier", "A patient identifier"),
    _p("active", _TOKEN, "Patient.active", "Whether the patient record is active"),
    *_human_name_params("Patient"),
    _p("birthdate", _DATE, "Patient.birthDate", "The patient's date of birth"),
    _p("death-date", _DATE, "Patient.deceased.ofType(dateTime)", "The date of death"),
    _p("gender", _TOKEN, "Patient.gender", "Gender of the patient"),
    *_address_params("Patient"),
    *_telecom_params("Patient"),
    _p("language", _TOKEN, "Patient.communication.language", "Language code (irrespective of use value)"),
    _p("general-practitioner", _REF, "Patient.generalPractitioner",
       "Patient's nominated general practitioner", _PRACTITIONER_ORG),
    _p("link", _REF, "Patient.link.other",
       "All patients linked to the given patient", ("Patient", "RelatedPerson")),
    _p("organization", _REF, "Patient.managingOrganization",
       "The custodian of the patient record", _ORGANIZATION),
)

_PRACTITIONER_PARAMS = _params(
    _p("identifier", _TOKEN, "Practitioner.identifier", "A practitioner's identifier"),
    _p("active", _TOKEN, "Practitioner.active", "Whether the practitioner record is active"),
    *_human_name_params("Practitioner"),
    _p("gender", _TOKEN, "Practitioner.gender", "Gender of the practitioner"),
    *_address_params("Practitioner"),
    *_telecom_params("Practitioner"),
    _p("communication", _TOKEN, "Practitioner.communication",
       "A language the practitioner can communicate in"),
)

_PRACTITIONER_ROLE_PARAMS = _params(
    _p("identifier", _TOKEN, "PractitionerRole.identifier", "A practitioner role's identifier"),
    _p("active", _TOKEN, "PractitionerRole.active", "Whether this practitioner role record is in active use"),
    _p("date", _DATE, "PractitionerRole.period", "The period during which the role is authorized"),
    _p("practitioner", _REF, "PractitionerRole.practitioner",
       "The practitioner in this role", ("Practitioner",)),
    _p("organization", _REF, "PractitionerRole.organization", "The organization represented", _ORGANIZATION),
    _p("location", _REF, "PractitionerRole.location",
       "A location at which the practitioner provides care", _LOCATION),
    _p("role", _TOKEN, "PractitionerRole.code", "The role the practitioner can perform"),
    _p("specialty", _TOKEN, "PractitionerRole.specialty", "The practitioner's specialty"),
    _p("service", _REF, "PractitionerRole.healthcareService",
       "Healthcare services provided", ("HealthcareService",)),
    _p("endpoint", _REF, "PractitionerRole.endpoint", "Technical endpoints for this role", ("Endpoint",)),
    *_telecom_params("PractitionerRole"),
)

_ORGANIZATION_PARAMS = _params(
    _p("identifier", _TOKEN, "Organization.identifier", "Any identifier for the organization"),
    _p("active", _TOKEN, "Organization.active", "Whether the organization record is active"),
    _p("name", _STRING, "Organization.name | Organization.alias",
       "A portion of the organization's name or alias"),
    _p("type", _TOKEN, "Organization.type", "A code for the type of organization"),
    _p("partof", _REF, "Organization.partOf", "An organization this organization is part of", _ORGANIZATION),
    _p("endpoint", _REF, "Organization.endpoint", "Technical endpoints of the organization", ("Endpoint",)),
    *_address_params("Organization"),
)

_LOCATION_PARAMS = _params(
    _p("identifier", _TOKEN, "Location.identifier", "An identifier for the location"),
    _p("name", _STRING, "Location.name | Location.alias", "A portion of the location's name or alias"),
    _p("status", _TOKEN, "Location.status", "active | suspended | inactive"),
    _p("operational-status", _TOKEN, "Location.operationalStatus", "Operational status (typically bed/room)"),
    _p("type", _TOKEN, "Location.type", "A code for the type of location"),
    _p("organization", _REF, "Location.managingOrganization",
       "The organization managing the location", _ORGANIZATION),
    _p("partof", _REF, "Location.partOf", "A location of which this location is a part", _LOCATION),
    _p("endpoint", _REF, "Location.endpoint", "Technical endpoints of the location", ("Endpoint",)),
    *_address_params("Location"),
)

_ENCOUNTER_PARAMS = _params(
    _p("identifier", _TOKEN, "Encounter.identifier", "Identifier(s) by which this encounter is known"),
    _p("patient", _REF, "Encounter.subject", "The patient present at the encounter", _PATIENT),
    _p("subject", _REF, "Encounter.subject", "The patient or group present at the encounter", _GROUP_PATIENT),
    _p("status", _TOKEN, "Encounter.status", "planned | arrived | triaged | in-progress | finished | ..."),
    _p("class", _TOKEN, "Encounter.class", "Classification of patient encounter"),
    _p("type", _TOKEN, "Encounter.type", "Specific type of encounter"),
    _p("date", _DATE, "Encounter.period", "A date within the period the encounter lasted"),
    _p("length", _QTY, "Encounter.length", "Length of encounter"),
    _p("location", _REF, "Encounter.location.location", "Location the encounter takes place", _LOCATION),
    _p("location-period", _DATE, "Encounter.location.period", "Time period the patient was at the location"),
    _p("participant", _REF,
       "Encounter.participant.individual",
       "Persons involved in the encounter other than the patient",
       ("Practitioner", "PractitionerRole", "RelatedPerson")),
    _p("practitioner", _REF, "Encounter.participant.individual",
       "Practitioners involved in the encounter", ("Practitioner",)),
    _p("participant-type", _TOKEN, "Encounter.participant.type", "Role of participant in encounter"),
    _p("reason-code", _TOKEN, "Encounter.reasonCode", "Coded reason the encounter takes place"),
    _p("reason-reference", _REF,
       "Encounter.reasonReference",
       "Reason the encounter takes place (reference)",
       ("Condition", "Observation", "Procedure", "ImmunizationRecommendation")),
    _p("diagnosis", _REF, "Encounter.diagnosis.condition",
       "Diagnosis relevant to the encounter", ("Condition", "Procedure")),
    _p("service-provider", _REF, "Encounter.serviceProvider",
       "Organization responsible for the encounter", _ORGANIZATION),
    _p("part-of", _REF, "Encounter.partOf", "Another encounter this encounter is part of", _ENCOUNTER),
    _p("based-on", _REF, "Encounter.basedOn",
       "The ServiceRequest that initiated this encounter", ("ServiceRequest",)),
    _p("episode-of-care", _REF, "Encounter.episodeOfCare",
       "Episode(s) of care of this encounter", ("EpisodeOfCare",)),
    _p("account", _REF, "Encounter.account", "Accounts used for billing this encounter", ("Account",)),
    _p("appointment", _REF, "Encounter.appointment",
       "The appointment that scheduled this encounter", ("Appointment",)),
    _p("special-arrangement", _TOKEN, "Encounter.hospitalization.specialArrangement",
       "Wheelchair, translator, ..."),
    _p("discharge-disposition", _TOKEN, "Encounter.hospitalization.dischargeDisposition",
       "Category or kind of location after discharge (US Core)"),
)

_OBSERVATION_PARAMS = _params(
    _p("identifier", _TOKEN, "Observation.identifier", "The unique id for a particular observation"),
    _p("patient", _REF, "Observation.subject",
       "The subject that the observation is about (if patient)", _PATIENT),
    _p("subject", _REF, "Observation.subject",
       "The subject that the observation is about", ("Group", "Device", "Patient", "Location")),
    _p("encounter", _REF, "Observation.encounter",
       "Encounter related to the observation", _ENCOUNTER_EPISODE),
    _p("status", _TOKEN, "Observation.status", "The status of the observation"),
    _p("category", _TOKEN, "Observation.category", "The classification of the type of observation"),
    _p("code", _TOKEN, "Observation.code", "The code of the observation type"),
    _p("component-code", _TOKEN, "Observation.component.code", "The component code of the observation type"),
    _p("combo-code", _TOKEN, "Observation.code | Observation.component.code",
       "The observation or component code"),
    _p("date", _DATE, "Observation.effective", "Obtained date/time; if a period, a date within it"),
    _p("value-quantity", _QTY, "Observation.value.ofType(Quantity)", "The value, if a Quantity"),
    _p("value-concept", _TOKEN, "Observation.value.ofType(CodeableConcept)",
       "The value, if a CodeableConcept"),
    _p("value-string", _STRING,
       "Observation.value.ofType(string) | Observation.value.ofType(CodeableConcept).text",
       "The value, if a string, and the text of a CodeableConcept value"),
    _p("value-date", _DATE, "Observation.value.ofType(dateTime) | Observation.value.ofType(Period)",
       "The value, if a dateTime or Period"),
    _p("component-value-quantity", _QTY, "Observation.component.value.ofType(Quantity)",
       "The value of a component, if a Quantity"),
    _p("component-value-concept", _TOKEN, "Observation.component.value.ofType(CodeableConcept)",
       "The value of a component, if a CodeableConcept"),
    _p("combo-value-quantity", _QTY,
       "Observation.value.ofType(Quantity) | Observation.component.value.ofType(Quantity)",
       "The value or component value, if a Quantity"),
    _p("combo-value-concept", _TOKEN,
       "Observation.value.ofType(CodeableConcept) | Observation.component.value.ofType(CodeableConcept)",
       "The value or component value, if a CodeableConcept"),
    _p("data-absent-reason", _TOKEN, "Observation.dataAbsentReason", "Why the value is missing"),
    _p("component-data-absent-reason", _TOKEN, "Observation.component.dataAbsentReason",
       "Why a component value is missing"),
    _p("combo-data-absent-reason", _TOKEN,
       "Observation.dataAbsentReason | Observation.component.dataAbsentReason",
       "Why the value or a component value is missing"),
    _p("method", _TOKEN, "Observation.method", "The method used for the observation"),
    _p("performer", _REF, "Observation.performer", "Who performed the observation", _TEAM_MEMBER),
    _p("based-on", _REF, "Observation.basedOn",
       "The plan, proposal or order fulfilled by this observation", _OBSERVATION_BASIS),
    _p("part-of", _REF, "Observation.partOf", "Part of referenced event", _OBSERVATION_PART_OF),
    _p("derived-from", _REF, "Observation.derivedFrom",
       "Related measurements the observation is made from", _OBSERVATION_SOURCES),
    _p("has-member", _REF,
       "Observation.hasMember",
       "Related resource that belongs to the observation group",
       ("Observation", "MolecularSequence", "QuestionnaireResponse")),
    _p("device", _REF, "Observation.device",
       "The device that generated the data", ("Device", "DeviceMetric")),
    _p("specimen", _REF, "Observation.specimen", "Specimen used for this observation", ("Specimen",)),
    _p("focus", _REF, "Observation.focus",
       "The focus of an observation when not the patient of record", _ANY),
)

_CONDITION_PARAMS = _params(
    _p("identifier", _TOKEN, "Condition.identifier", "External ids for this condition"),
    _p("patient", _REF, "Condition.subject", "Who has the condition (if patient)", _PATIENT),
    _p("subject", _REF, "Condition.subject", "Who has the condition", _GROUP_PATIENT),
    _p("encounter", _REF, "Condition.encounter", "Encounter created as part of", _ENCOUNTER),
    _p("category", _TOKEN, "Condition.category", "The category of the condition"),
    _p("code", _TOKEN, "Condition.code", "Code for the condition"),
    _p("clinical-status", _TOKEN, "Condition.clinicalStatus", "The clinical status of the condition"),
    _p("verification-status", _TOKEN, "Condition.verificationStatus",
       "unconfirmed | provisional | confirmed | ..."),
    _p("severity", _TOKEN, "Condition.severity", "The severity of the condition"),
    _p("body-site", _TOKEN, "Condition.bodySite", "Anatomical location, if relevant"),
    _p("stage", _TOKEN, "Condition.stage.summary", "Simple summary (disease specific)"),
    _p("evidence", _TOKEN, "Condition.evidence.code", "Manifestation/symptom"),
    _p("evidence-detail", _REF, "Condition.evidence.detail", "Supporting information found elsewhere", _ANY),
    _p("onset-date", _DATE, "Condition.onset.ofType(dateTime) | Condition.onset.ofType(Period)",
       "Date-related onsets (dateTime and Period)"),
    _p("onset-age", _QTY, "Condition.onset.ofType(Age)", "Onset as an age"),
    _p("onset-info", _STRING, "Condition.onset.ofType(string)", "Onset as a string"),
    _p("abatement-date", _DATE, "Condition.abatement.ofType(dateTime) | Condition.abatement.ofType(Period)",
       "Date-related abatements (dateTime and Period)"),
    _p("abatement-age", _QTY, "Condition.abatement.ofType(Age)", "Abatement as an age"),
    _p("abatement-string", _STRING, "Condition.abatement.ofType(string)", "Abatement as a string"),
    _p("recorded-date", _DATE, "Condition.recordedDate", "Date the condition was first recorded"),
    _p("asserted-date", _DATE, f"Condition.extension.where(url='{_ASSERTED_DATE_URL}').value",
       "Date of the condition-assertedDate extension (US Core)"),
    _p("asserter", _REF, "Condition.asserter", "Person who asserts this condition", _ASSERTER),
)

_ALLERGY_PARAMS = _params(
    _p("identifier", _TOKEN, "AllergyIntolerance.identifier", "External ids for this item"),
    _p("patient", _REF, "AllergyIntolerance.patient", "Who the sensitivity is for", _PATIENT),
    _p("clinical-status", _TOKEN, "AllergyIntolerance.clinicalStatus", "active | inactive | resolved"),
    _p("verification-status", _TOKEN, "AllergyIntolerance.verificationStatus",
       "unconfirmed | confirmed | refuted | ..."),
    _p("type", _TOKEN, "AllergyIntolerance.type", "allergy | intolerance"),
    _p("category", _TOKEN, "AllergyIntolerance.category", "food | medication | environment | biologic"),
    _p("criticality", _TOKEN, "AllergyIntolerance.criticality", "low | high | unable-to-assess"),
    _p("code", _TOKEN, "AllergyIntolerance.code | AllergyIntolerance.reaction.substance",
       "Code that identifies the allergy or intolerance"),
    _p("date", _DATE, "AllergyIntolerance.recordedDate", "Date first version of the resource was recorded"),
    _p("last-date", _DATE, "AllergyIntolerance.lastOccurrence",
       "Date(/time) of last known occurrence of a reaction"),
    _p("onset", _DATE, "AllergyIntolerance.reaction.onset", "Date(/time) when manifestations showed"),
    _p("manifestation", _TOKEN, "AllergyIntolerance.reaction.manifestation",
       "Clinical symptoms/signs of the event"),
    _p("route", _TOKEN, "AllergyIntolerance.reaction.exposureRoute",
       "How the subject was exposed to the substance"),
    _p("severity", _TOKEN, "AllergyIntolerance.reaction.severity", "mild | moderate | severe"),
    _p("recorder", _REF, "AllergyIntolerance.recorder", "Who recorded the sensitivity", _ASSERTER),
    _p("asserter", _REF, "AllergyIntolerance.asserter",
       "Source of the information about the allergy", _ASSERTER),
)

_MEDICATION_REQUEST_PARAMS = _params(
    _p("identifier", _TOKEN, "MedicationRequest.identifier",
       "Return prescriptions with this external identifier"),
    _p("patient", _REF, "MedicationRequest.subject",
       "Returns prescriptions for a specific patient", _PATIENT),
    _p("subject", _REF, "MedicationRequest.subject",
       "The patient or group the orders are for", _GROUP_PATIENT),
    _p("encounter", _REF, "MedicationRequest.encounter",
       "Return prescriptions with this encounter", _ENCOUNTER),
    _p("status", _TOKEN, "MedicationRequest.status", "Return prescriptions with this status"),
    _p("intent", _TOKEN, "MedicationRequest.intent", "Returns prescriptions with different intents"),
    _p("category", _TOKEN, "MedicationRequest.category", "Returns prescriptions with different categories"),
    _p("priority", _TOKEN, "MedicationRequest.priority", "Returns prescriptions with different priorities"),
    _p("code", _TOKEN, "MedicationRequest.medication.ofType(CodeableConcept)",
       "Return prescriptions of this medication code"),
    _p("medication", _REF, "MedicationRequest.medication.ofType(Reference)",
       "Return prescriptions for this medication reference", ("Medication",)),
    _p("authoredon", _DATE, "MedicationRequest.authoredOn", "Return prescriptions written on this date"),
    _p("date", _DATE, "MedicationRequest.dosageInstruction.timing.event",
       "Medication to be administered on this date"),
    _p("requester", _REF, "MedicationRequest.requester",
       "Returns prescriptions prescribed by this prescriber", _AUTHOR),
    _p("intended-performer", _REF, "MedicationRequest.performer",
       "The intended performer of the administration", _PERFORMER),
    _p("intended-performertype", _TOKEN, "MedicationRequest.performerType",
       "Requests for a type of performer"),
    _p("intended-dispenser", _REF, "MedicationRequest.dispenseRequest.performer",
       "Prescriptions intended to be dispensed by this organization", _ORGANIZATION),
)

_MEDICATION_PARAMS = _params(
    _p("identifier", _TOKEN, "Medication.identifier", "Returns medications with this external identifier"),
    _p("code", _TOKEN, "Medication.code", "Returns medications for a specific code"),
    _p("status", _TOKEN, "Medication.status", "Returns medications for this status"),
    _p("form", _TOKEN, "Medication.form", "Returns medications for a specific dose form"),
    _p("ingredient", _REF, "Medication.ingredient.item.ofType(Reference)",
       "Returns medications for this ingredient reference", ("Medication", "Substance")),
    _p("ingredient-code", _TOKEN, "Medication.ingredient.item.ofType(CodeableConcept)",
       "Returns medications for this ingredient code"),
    _p("lot-number", _TOKEN, "Medication.batch.lotNumber",
       "Returns medications in a batch with this lot number"),
    _p("expiration-date", _DATE, "Medication.batch.expirationDate",
       "Medications in a batch with this expiration"),
    _p("manufacturer", _REF, "Medication.manufacturer",
       "Medications made or sold by this organization", _ORGANIZATION),
)

_IMMUNIZATION_PARAMS = _params(
    _p("identifier", _TOKEN, "Immunization.identifier", "Business identifier"),
    _p("patient", _REF, "Immunization.patient", "The patient for the vaccination record", _PATIENT),
    _p("status", _TOKEN, "Immunization.status", "Immunization event status"),
    _p("status-reason", _TOKEN, "Immunization.statusReason", "Reason why the vaccine was not administered"),
    _p("vaccine-code", _TOKEN, "Immunization.vaccineCode", "Vaccine product administered"),
    _p("date", _DATE, "Immunization.occurrence", "Vaccination (non)-administration date"),
    _p("lot-number", _STRING, "Immunization.lotNumber", "Vaccine lot number"),
    _p("manufacturer", _REF, "Immunization.manufacturer", "Vaccine manufacturer", _ORGANIZATION),
    _p("location", _REF, "Immunization.location", "Where the vaccine was (to be) administered", _LOCATION),
    _p("performer", _REF, "Immunization.performer.actor", "Who performed the vaccination", _PRACTITIONER_ORG),
    _p("reason-code", _TOKEN, "Immunization.reasonCode", "Reason why the vaccine was administered"),
    _p("reason-reference", _REF, "Immunization.reasonReference",
       "Why the immunization occurred", ("Condition", "Observation", "DiagnosticReport")),
    _p("reaction", _REF, "Immunization.reaction.detail",
       "Additional information on reaction", ("Observation",)),
    _p("reaction-date", _DATE, "Immunization.reaction.date", "When the reaction started"),
    _p("series", _STRING, "Immunization.protocolApplied.series", "The series being followed by the provider"),
    _p("target-disease", _TOKEN, "Immunization.protocolApplied.targetDisease",
       "The disease the dose targets"),
)

_PROCEDURE_PARAMS = _params(
    _p("identifier", _TOKEN, "Procedure.identifier", "A unique identifier for a procedure"),
    _p("patient", _REF, "Procedure.subject", "Search by subject (if patient)", _PATIENT),
    _p("subject", _REF, "Procedure.subject", "Search by subject", _GROUP_PATIENT),
    _p("encounter", _REF, "Procedure.encounter", "Encounter created as part of", _ENCOUNTER_EPISODE),
    _p("status", _TOKEN, "Procedure.status", "preparation | in-progress | not-done | completed | ..."),
    _p("category", _TOKEN, "Procedure.category", "Classification of the procedure"),
    _p("code", _TOKEN, "Procedure.code", "A code to identify a procedure"),
    _p("date", _DATE, "Procedure.performed", "When the procedure was performed"),
    _p("performer", _REF, "Procedure.performer.actor", "Who performed the procedure", _AUTHOR),
    _p("location", _REF, "Procedure.location", "Where the procedure happened", _LOCATION),
    _p("reason-code", _TOKEN, "Procedure.reasonCode", "Coded reason procedure performed"),
    _p("reason-reference", _REF,
       "Procedure.reasonReference",
       "The justification that the procedure was performed",
       ("Condition", "Observation", "Procedure", "DiagnosticReport", "DocumentReference")),
    _p("based-on", _REF, "Procedure.basedOn", "A request for this procedure", ("CarePlan", "ServiceRequest")),
    _p("part-of", _REF, "Procedure.partOf",
       "Part of referenced event", ("Observation", "Procedure", "MedicationAdministration")),
    _p("instantiates-canonical", _REF, "Procedure.instantiatesCanonical",
       "Instantiates FHIR protocol or definition", _DEFINITION),
    _p("instantiates-uri", _URI, "Procedure.instantiatesUri", "Instantiates external protocol or definition"),
)

_DIAGNOSTIC_REPORT_PARAMS = _params(
    _p("identifier", _TOKEN, "DiagnosticReport.identifier", "An identifier for the report"),
    _p("patient", _REF, "DiagnosticReport.subject", "The subject of the report (if patient)", _PATIENT),
    _p("subject", _REF, "DiagnosticReport.subject",
       "The subject of the report", ("Group", "Device", "Patient", "Location")),
    _p("encounter", _REF, "DiagnosticReport.encounter",
       "The encounter the report is about", _ENCOUNTER_EPISODE),
    _p("status", _TOKEN, "DiagnosticReport.status", "The status of the report"),
    _p("category", _TOKEN, "DiagnosticReport.category", "Which diagnostic discipline created the report"),
    _p("code", _TOKEN, "DiagnosticReport.code", "The code for the report"),
    _p("date", _DATE, "DiagnosticReport.effective", "The clinically relevant time of the report"),
    _p("issued", _DATE, "DiagnosticReport.issued", "When the report was issued"),
    _p("conclusion", _TOKEN, "DiagnosticReport.conclusionCode", "A coded conclusion on the report"),
    _p("result", _REF, "DiagnosticReport.result", "Link to an atomic result", ("Observation",)),
    _p("performer", _REF, "DiagnosticReport.performer", "Who is responsible for the report", _INTERPRETER),
    _p("results-interpreter", _REF, "DiagnosticReport.resultsInterpreter",
       "Who was the source of the report", _INTERPRETER),
    _p("based-on", _REF,
       "DiagnosticReport.basedOn",
       "Reference to the service request",
       ("CarePlan", "MedicationRequest", "NutritionOrder", "ServiceRequest", "ImmunizationRecommendation")),
    _p("specimen", _REF, "DiagnosticReport.specimen", "The specimen details", ("Specimen",)),
    _p("media", _REF, "DiagnosticReport.media.link", "A reference to the image source", ("Media",)),
)

_DOCUMENT_REFERENCE_PARAMS = _params(
    _p("identifier", _TOKEN, "DocumentReference.masterIdentifier | DocumentReference.identifier",
       "Master version specific identifier or other identifiers"),
    _p("patient", _REF, "DocumentReference.subject",
       "Who/what is the subject of the document (if patient)", _PATIENT),
    _p("subject", _REF, "DocumentReference.subject",
       "Who/what is the subject of the document", ("Practitioner", "Group", "Device", "Patient")),
    _p("encounter", _REF, "DocumentReference.context.encounter",
       "Context of the document", _ENCOUNTER_EPISODE),
    _p("status", _TOKEN, "DocumentReference.status", "current | superseded | entered-in-error"),
    _p("type", _TOKEN, "DocumentReference.type", "Kind of document (LOINC if possible)"),
    _p("category", _TOKEN, "DocumentReference.category", "Categorization of document"),
    _p("date", _DATE, "DocumentReference.date", "When this document reference was created"),
    _p("period", _DATE, "DocumentReference.context.period", "Time of service that is being documented"),
    _p("format", _TOKEN, "DocumentReference.content.format", "Format/content rules for the document"),
    _p("contenttype", _TOKEN, "DocumentReference.content.attachment.contentType", "Mime type of the content"),
    _p("language", _TOKEN, "DocumentReference.content.attachment.language",
       "Language of the content (BCP-47)"),
    _p("location", _URI, "DocumentReference.content.attachment.url", "Uri where the data can be found"),
    _p("description", _STRING, "DocumentReference.description", "Human-readable description"),
    _p("author", _REF, "DocumentReference.author", "Who and/or what authored the document", _AUTHOR),
    _p("authenticator", _REF, "DocumentReference.authenticator",
       "Who/what authenticated the document", _PRACTITIONER_ORG),
    _p("custodian", _REF, "DocumentReference.custodian",
       "Organization which maintains the document", _ORGANIZATION),
    _p("relatesto", _REF, "DocumentReference.relatesTo.target",
       "Target of the relationship", ("DocumentReference",)),
    _p("relation", _TOKEN, "DocumentReference.relatesTo.code", "replaces | transforms | signs | appends"),
    _p("event", _TOKEN, "DocumentReference.context.event", "Main clinical acts documented"),
    _p("facility", _TOKEN, "DocumentReference.context.facilityType",
       "Kind of facility where patient was seen"),
    _p("setting", _TOKEN, "DocumentReference.context.practiceSetting",
       "Clinical specialty where it was created"),
    _p("related", _REF, "DocumentReference.context.related", "Related identifiers or resources", _ANY),
    _p("security-label", _TOKEN, "DocumentReference.securityLabel", "Document security-tags"),
)

_CARE_PLAN_PARAMS = _params(
    _p("identifier", _TOKEN, "CarePlan.identifier", "External ids for this plan"),
    _p("patient", _REF, "CarePlan.subject", "Who the care plan is for (if patient)", _PATIENT),
    _p("subject", _REF, "CarePlan.subject", "Who the care plan is for", _GROUP_PATIENT),
    _p("encounter", _REF, "CarePlan.encounter", "Encounter created as part of", _ENCOUNTER),
    _p("status", _TOKEN, "CarePlan.status", "draft | active | on-hold | revoked | completed | ..."),
    _p("intent", _TOKEN, "CarePlan.intent", "proposal | plan | order | option"),
    _p("category", _TOKEN, "CarePlan.category", "Type of plan"),
    _p("date", _DATE, "CarePlan.period", "Time period plan covers"),
    _p("activity-code", _TOKEN, "CarePlan.activity.detail.code", "Detail type of activity"),
    _p("activity-date", _DATE, "CarePlan.activity.detail.scheduled", "A date within the activity's schedule"),
    _p("activity-reference", _REF, "CarePlan.activity.reference",
       "Activity details defined in specific resource", _CARE_PLAN_ACTIVITY),
    _p("performer", _REF, "CarePlan.activity.detail.performer",
       "Performer of one of the plan's activities", _CARE_PLAN_PERFORMER),
    _p("care-team", _REF, "CarePlan.careTeam", "Who's involved in plan?", ("CareTeam",)),
    _p("condition", _REF, "CarePlan.addresses", "Health issues this plan addresses", ("Condition",)),
    _p("goal", _REF, "CarePlan.goal", "Desired outcome of plan", ("Goal",)),
    _p("based-on", _REF, "CarePlan.basedOn", "Fulfills CarePlan", ("CarePlan",)),
    _p("part-of", _REF, "CarePlan.partOf", "Part of referenced CarePlan", ("CarePlan",)),
    _p("replaces", _REF, "CarePlan.replaces", "CarePlan replaced by this CarePlan", ("CarePlan",)),
    _p("instantiates-canonical", _REF, "CarePlan.instantiatesCanonical",
       "Instantiates FHIR protocol or definition", _DEFINITION),
    _p("instantiates-uri", _URI, "CarePlan.instantiatesUri", "Instantiates external protocol or definition"),
)

_CARE_TEAM_PARAMS = _params(
    _p("identifier", _TOKEN, "CareTeam.identifier", "External ids for this team"),
    _p("patient", _REF, "CareTeam.subject", "Who the care team is for (if patient)", _PATIENT),
    _p("subject", _REF, "CareTeam.subject", "Who the care team is for", _GROUP_PATIENT),
    _p("encounter", _REF, "CareTeam.encounter", "Encounter created as part of", _ENCOUNTER),
    _p("status", _TOKEN, "CareTeam.status", "proposed | active | suspended | inactive | entered-in-error"),
    _p("category", _TOKEN, "CareTeam.category", "Type of team"),
    _p("date", _DATE, "CareTeam.period", "Time period the team covers"),
    _p("participant", _REF, "CareTeam.participant.member", "Who is involved", _TEAM_MEMBER),
    _p("role", _TOKEN, "CareTeam.participant.role", "Type of involvement of a participant (US Core)"),
)

_GOAL_PARAMS = _params(
    _p("identifier", _TOKEN, "Goal.identifier", "External ids for this goal"),
    _p("patient", _REF, "Goal.subject", "Who this goal is intended for (if patient)", _PATIENT),
    _p("subject", _REF, "Goal.subject",
       "Who this goal is intended for", ("Group", "Organization", "Patient")),
    _p("lifecycle-status", _TOKEN, "Goal.lifecycleStatus", "proposed | planned | accepted | active | ..."),
    _p("achievement-status", _TOKEN, "Goal.achievementStatus", "in-progress | improving | worsening | ..."),
    _p("category", _TOKEN, "Goal.category", "E.g. treatment, dietary, behavioral"),
    _p("description", _TOKEN, "Goal.description", "Code or text describing the goal (US Core)"),
    _p("start-date", _DATE, "Goal.start.ofType(date)", "When goal pursuit begins"),
    _p("target-date", _DATE, "Goal.target.due.ofType(date)", "Reach goal on or before"),
)

_DEVICE_PARAMS = _params(
    _p("identifier", _TOKEN, "Device.identifier", "Instance id from manufacturer, owner, and others"),
    _p("patient", _REF, "Device.patient",
       "Patient information, if the device is affixed to a person", _PATIENT),
    _p("status", _TOKEN, "Device.status", "active | inactive | entered-in-error | unknown"),
    _p("type", _TOKEN, "Device.type", "The type of the device"),
    _p("device-name", _STRING, "Device.deviceName.name | Device.type.coding.display | Device.type.text",
       "Any string field of Device.deviceName or Device.type"),
    _p("manufacturer", _STRING, "Device.manufacturer", "The manufacturer of the device"),
    _p("model", _STRING, "Device.modelNumber", "The model of the device"),
    _p("udi-carrier", _STRING, "Device.udiCarrier.carrierHRF", "UDI barcode string in HRF format"),
    _p("udi-di", _STRING, "Device.udiCarrier.deviceIdentifier", "The UDI device identifier (DI)"),
    _p("location", _REF, "Device.location", "Where the device is found", _LOCATION),
    _p("organization", _REF, "Device.owner", "The organization responsible for the device", _ORGANIZATION),
    _p("url", _URI, "Device.url", "Network address to contact the device"),
)

_PROVENANCE_PARAMS = _params(
    _p("target", _REF, "Provenance.target", "Target reference(s) (usually version specific)", _ANY),
    _p("patient", _REF, "Provenance.target", "Target reference(s) that are patients", _PATIENT),
    _p("recorded", _DATE, "Provenance.recorded", "When the activity was recorded / updated"),
    _p("when", _DATE, "Provenance.occurred.ofType(dateTime)", "When the activity occurred"),
    _p("agent", _REF, "Provenance.agent.who", "Who participated", _AUTHOR),
    _p("agent-role", _TOKEN, "Provenance.agent.role", "What the agent's role was"),
    _p("agent-type", _TOKEN, "Provenance.agent.type", "How the agent participated"),
    _p("entity", _REF, "Provenance.entity.what", "Identity of entity", _ANY),
    _p("location", _REF, "Provenance.location", "Where the activity occurred", _LOCATION),
    _p("signature-type", _TOKEN, "Provenance.signature.type", "Why the entity signed the object(s)"),
)

_GROUP_PARAMS = _params(
    _p("identifier", _TOKEN, "Group.identifier", "Unique id"),
    _p("type", _TOKEN, "Group.type", "The type of resources the group contains"),
    _p("code", _TOKEN, "Group.code", "The kind of resources contained"),
    _p("actual", _TOKEN, "Group.actual", "Descriptive or actual"),
    _p("characteristic", _TOKEN, "Group.characteristic.code", "Kind of characteristic"),
    _p("value", _TOKEN,
       "Group.characteristic.value.ofType(CodeableConcept) | Group.characteristic.value.ofType(boolean)",
       "Value held by a characteristic"),
    _p("exclude", _TOKEN, "Group.characteristic.exclude", "Whether a characteristic includes or excludes"),
    _p("member", _REF, "Group.member.entity", "Reference to the group member", _GROUP_MEMBER),
    _p("managing-entity", _REF,
       "Group.managingEntity",
       "Entity that is the custodian of the group's definition",
       ("Practitioner", "Organization", "PractitionerRole", "RelatedPerson")),
)
# fmt: on

# Resource type -> parameter name -> SearchParam.
REGISTRY: dict[str, dict[str, SearchParam]] = {
    "Patient": _PATIENT_PARAMS,
    "Practitioner": _PRACTITIONER_PARAMS,
    "PractitionerRole": _PRACTITIONER_ROLE_PARAMS,
    "Organization": _ORGANIZATION_PARAMS,
    "Location": _LOCATION_PARAMS,
    "Encounter": _ENCOUNTER_PARAMS,
    "Observation": _OBSERVATION_PARAMS,
    "Condition": _CONDITION_PARAMS,
    "AllergyIntolerance": _ALLERGY_PARAMS,
    "MedicationRequest": _MEDICATION_REQUEST_PARAMS,
    "Medication": _MEDICATION_PARAMS,
    "Immunization": _IMMUNIZATION_PARAMS,
    "Procedure": _PROCEDURE_PARAMS,
    "DiagnosticReport": _DIAGNOSTIC_REPORT_PARAMS,
    "DocumentReference": _DOCUMENT_REFERENCE_PARAMS,
    "CarePlan": _CARE_PLAN_PARAMS,
    "CareTeam": _CARE_TEAM_PARAMS,
    "Goal": _GOAL_PARAMS,
    "Device": _DEVICE_PARAMS,
    "Provenance": _PROVENANCE_PARAMS,
    "Group": _GROUP_PARAMS,
}

SUPPORTED_TYPES: tuple[str, ...] = tuple(REGISTRY)

# Resource type -> the reference parameters whose Patient targets put a resource in that Patient's
# compartment (R4 compartmentdefinition-patient). A Patient is also in its own compartment. R4 lists Device
# without parameters; `Device.patient` is added because US Core reads devices by patient. Types absent here
# belong to no compartment.
COMPARTMENT_PARAMS: dict[str, tuple[str, ...]] = {
    "Patient": ("link",),
    "Encounter": ("patient",),
    "Observation": ("subject", "performer"),
    "Condition": ("patient", "asserter"),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "MedicationRequest": ("subject",),
    "Immunization": ("patient",),
    "Procedure": ("patient", "performer"),
    "DiagnosticReport": ("subject",),
    "DocumentReference": ("subject", "author"),
    "CarePlan": ("patient", "performer"),
    "CareTeam": ("patient", "participant"),
    "Goal": ("patient",),
    "Device": ("patient",),
    "Provenance": ("patient",),
    "Group": ("member",),
}


def search_params_for(resource_type: str) -> dict[str, SearchParam]:
    """Every parameter of a type, common ones included (empty for an unsupported type)."""
    own = REGISTRY.get(resource_type)
    if own is None:
        return {}
    return {**COMMON_PARAMS, **own}


def get_search_param(resource_type: str, name: str) -> SearchParam | None:
    return search_params_for(resource_type).get(name)


def is_supported_type(resource_type: str) -> bool:
    return resource_type in REGISTRY
