"""Code tables for the demo population: SNOMED CT, ICD-10-CM, LOINC, RxNorm, CVX and NUCC codes with displays.

RxNorm codes are semantic clinical drugs (SCD) as published by RxNav; CVX codes follow the CDC table;
LOINC codes and UCUM units follow the US Core vital-signs and laboratory profiles. Nothing here is real
patient data. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
NUCC = "http://nucc.org/provider-taxonomy"
NPI = "http://hl7.org/fhir/sid/us-npi"
MRN_SYSTEM = "http://hospital.example.org/mrn"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"


@dataclass(frozen=True)
class Code:
    """One coding: system, code and display."""

    system: str
    code: str
    display: str

    def coding(self) -> dict[str, str]:
        return {"system": self.system, "code": self.code, "display": self.display}

    def concept(self) -> dict[str, object]:
        return {"coding": [self.coding()], "text": self.display}


def sct(code: str, display: str) -> Code:
    return Code(SNOMED, code, display)


def loinc(code: str, display: str) -> Code:
    return Code(LOINC, code, display)


# --- Conditions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionDef:
    """A chronic problem: codes, who gets it (prevalence from an age on) and how it is treated."""

    key: str
    snomed: Code
    icd10: Code
    prevalence: tuple[tuple[int, float], ...]  # (from age, probability), ascending ages
    medications: tuple[str, ...] = ()
    switched_from: str | None = None  # an earlier drug some patients stopped
    follow_up_days: tuple[int, int] | None = None  # visit interval range, None: seen at check-ups only
    excludes: tuple[str, ...] = ()

    def probability(self, age: int) -> float:
        chance = 0.0
        for from_age, probability in self.prevalence:
            if age >= from_age:
                chance = probability
        return chance


def _icd(code: str, display: str) -> Code:
    return Code(ICD10CM, code, display)


CHRONIC_CONDITIONS: tuple[ConditionDef, ...] = (
    ConditionDef(
        "hypertension",
        sct("38341003", "Hypertensive disorder, systemic arterial"),
        _icd("I10", "Essential (primary) hypertension"),
        ((18, 0.06), (35, 0.2), (50, 0.4), (65, 0.6)),
        ("lisinopril",),
        switched_from="amlodipine",
        follow_up_days=(110, 190),
    ),
    ConditionDef(
        "diabetes",
        sct("44054006", "Diabetes mellitus type 2"),
        _icd("E11.9", "Type 2 diabetes mellitus without complications"),
        ((20, 0.03), (40, 0.1), (55, 0.18), (65, 0.24)),
        ("metformin",),
        follow_up_days=(80, 120),
        excludes=("prediabetes",),
    ),
    ConditionDef(
        "prediabetes",
        sct("714628002", "Prediabetes"),
        _icd("R73.03", "Prediabetes"),
        ((25, 0.08), (45, 0.16)),
    ),
    ConditionDef(
        "hyperlipidemia",
        sct("55822004", "Hyperlipidemia"),
        _icd("E78.5", "Hyperlipidemia, unspecified"),
        ((25, 0.06), (40, 0.2), (55, 0.35)),
        ("atorvastatin",),
        follow_up_days=(300, 400),
    ),
    ConditionDef(
        "obesity",
        sct("414916001", "Obesity"),
        _icd("E66.9", "Obesity, unspecified"),
        ((6, 0.12), (18, 0.3)),
    ),
    ConditionDef(
        "asthma",
        sct("195967001", "Asthma"),
        _icd("J45.909", "Unspecified asthma, uncomplicated"),
        ((2, 0.08),),
        ("albuterol", "fluticasone"),
    ),
    ConditionDef(
        "copd",
        sct("13645005", "Chronic obstructive lung disease"),
        _icd("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
        ((45, 0.05), (65, 0.1)),
        ("albuterol",),
        follow_up_days=(150, 240),
    ),
    ConditionDef(
        "ckd",
        sct("433144002", "Chronic kidney disease stage 3"),
        _icd("N18.30", "Chronic kidney disease, stage 3 unspecified"),
        ((50, 0.05), (70, 0.14)),
        follow_up_days=(150, 200),
    ),
    ConditionDef(
        "depression",
        sct("370143000", "Major depressive disorder"),
        _icd("F32.9", "Major depressive disorder, single episode, unspecified"),
        ((13, 0.07),),
        ("sertraline",),
        follow_up_days=(150, 240),
    ),
    ConditionDef(
        "anxiety",
        sct("197480006", "Anxiety disorder"),
        _icd("F41.9", "Anxiety disorder, unspecified"),
        ((10, 0.06),),
    ),
    ConditionDef(
        "hypothyroidism",
        sct("40930008", "Hypothyroidism"),
        _icd("E03.9", "Hypothyroidism, unspecified"),
        ((20, 0.03), (50, 0.07)),
        ("levothyroxine",),
    ),
    ConditionDef(
        "gerd",
        sct("235595009", "Gastroesophageal reflux disease"),
        _icd("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
        ((18, 0.08),),
        ("omeprazole",),
    ),
    ConditionDef(
        "allergic_rhinitis",
        sct("61582004", "Allergic rhinitis"),
        _icd("J30.9", "Allergic rhinitis, unspecified"),
        ((3, 0.1),),
        ("cetirizine",),
    ),
    ConditionDef(
        "adhd",
        sct("406506008", "Attention deficit hyperactivity disorder"),
        _icd("F90.9", "Attention-deficit hyperactivity disorder, unspecified type"),
        ((6, 0.07), (25, 0.0)),
        ("methylphenidate",),
        follow_up_days=(150, 200),
    ),
    ConditionDef(
        "osteoarthritis_knee",
        sct("239873007", "Osteoarthritis of knee"),
        _icd("M17.9", "Osteoarthritis of knee, unspecified"),
        ((50, 0.08), (65, 0.18)),
        ("acetaminophen",),
    ),
    ConditionDef(
        "atrial_fibrillation",
        sct("49436004", "Atrial fibrillation"),
        _icd("I48.91", "Unspecified atrial fibrillation"),
        ((55, 0.03), (70, 0.09)),
        ("apixaban", "metoprolol"),
        follow_up_days=(150, 200),
    ),
    ConditionDef(
        "cad",
        sct("53741008", "Coronary arteriosclerosis"),
        _icd("I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"),
        ((45, 0.03), (65, 0.1)),
        ("aspirin", "atorvastatin"),
        follow_up_days=(170, 220),
    ),
)
CONDITIONS_BY_KEY = {condition.key: condition for condition in CHRONIC_CONDITIONS}


@dataclass(frozen=True)
class AcuteDef:
    """A self-limited problem seen at a sick visit, with its usual treatment and test."""

    key: str
    snomed: Code
    icd10: Code
    min_age: int
    medication: str | None = None
    procedure: Code | None = None
    fever: bool = False


ACUTE_CONDITIONS: tuple[AcuteDef, ...] = (
    AcuteDef(
        "pharyngitis",
        sct("195662009", "Acute viral pharyngitis"),
        _icd("J02.9", "Acute pharyngitis, unspecified"),
        3,
        procedure=sct("117015009", "Throat culture"),
        fever=True,
    ),
    AcuteDef(
        "bronchitis",
        sct("10509002", "Acute bronchitis"),
        _icd("J20.9", "Acute bronchitis, unspecified"),
        5,
        fever=True,
    ),
    AcuteDef(
        "otitis_media",
        sct("65363002", "Otitis media"),
        _icd("H66.90", "Otitis media, unspecified, unspecified ear"),
        1,
        medication="amoxicillin",
        fever=True,
    ),
    AcuteDef(
        "sinusitis",
        sct("444814009", "Viral sinusitis"),
        _icd("J01.90", "Acute sinusitis, unspecified"),
        5,
    ),
    AcuteDef(
        "uti",
        sct("68566005", "Urinary tract infectious disease"),
        _icd("N39.0", "Urinary tract infection, site not specified"),
        12,
        medication="amoxicillin",
    ),
    AcuteDef(
        "low_back_pain",
        sct("279039007", "Low back pain"),
        _icd("M54.50", "Low back pain, unspecified"),
        16,
        medication="ibuprofen",
    ),
    AcuteDef(
        "ankle_sprain",
        sct("44465007", "Sprain of ankle"),
        _icd("S93.409A", "Sprain of unspecified ligament of unspecified ankle, initial encounter"),
        6,
        medication="ibuprofen",
    ),
)

# --- Medications ------------------------------------------------------------------------------------------

ORAL = sct("26643006", "Oral route")
INHALED = sct("447694001", "Respiratory tract route")


@dataclass(frozen=True)
class MedicationDef:
    """An RxNorm clinical drug with its usual sig."""

    key: str
    rxnorm: str
    display: str
    sig: str
    dose: float
    dose_unit: str  # UCUM annotation, e.g. "{tbl}"
    per_day: int
    route: Code = ORAL
    as_needed: bool = False
    days: int = 90
    stop_reason: str | None = None

    def concept(self) -> dict[str, object]:
        return Code(RXNORM, self.rxnorm, self.display).concept()


MEDICATIONS: dict[str, MedicationDef] = {
    m.key: m
    for m in (
        MedicationDef(
            "lisinopril",
            "314076",
            "lisinopril 10 MG Oral Tablet",
            "Take 1 tablet by mouth once daily",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "amlodipine",
            "197361",
            "amlodipine 5 MG Oral Tablet",
            "Take 1 tablet by mouth once daily",
            1,
            "{tbl}",
            1,
            stop_reason="Ankle edema",
        ),
        MedicationDef(
            "metformin",
            "860975",
            "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
            "Take 1 tablet by mouth once daily with the evening meal",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "atorvastatin",
            "617310",
            "atorvastatin 20 MG Oral Tablet",
            "Take 1 tablet by mouth at bedtime",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "albuterol",
            "745679",
            "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
            "Inhale 2 puffs every 4 to 6 hours as needed for wheezing",
            2,
            "{puff}",
            4,
            route=INHALED,
            as_needed=True,
        ),
        MedicationDef(
            "fluticasone",
            "895994",
            "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
            "Inhale 2 puffs twice daily; rinse mouth after use",
            2,
            "{puff}",
            2,
            route=INHALED,
        ),
        MedicationDef(
            "levothyroxine",
            "966222",
            "levothyroxine sodium 0.05 MG Oral Tablet",
            "Take 1 tablet by mouth every morning on an empty stomach",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "omeprazole",
            "198051",
            "omeprazole 20 MG Delayed Release Oral Capsule",
            "Take 1 capsule by mouth daily before breakfast",
            1,
            "{cap}",
            1,
        ),
        MedicationDef(
            "sertraline",
            "312940",
            "sertraline 50 MG Oral Tablet",
            "Take 1 tablet by mouth once daily",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "apixaban",
            "1364445",
            "apixaban 5 MG Oral Tablet",
            "Take 1 tablet by mouth twice daily",
            1,
            "{tbl}",
            2,
        ),
        MedicationDef(
            "metoprolol",
            "866427",
            "24 HR metoprolol succinate 25 MG Extended Release Oral Tablet",
            "Take 1 tablet by mouth once daily",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "aspirin",
            "243670",
            "aspirin 81 MG Oral Tablet",
            "Take 1 tablet by mouth once daily",
            1,
            "{tbl}",
            1,
        ),
        MedicationDef(
            "cetirizine",
            "1014678",
            "cetirizine hydrochloride 10 MG Oral Tablet",
            "Take 1 tablet by mouth once daily as needed for allergy symptoms",
            1,
            "{tbl}",
            1,
            as_needed=True,
        ),
        MedicationDef(
            "methylphenidate",
            "1091392",
            "methylphenidate hydrochloride 20 MG Oral Tablet",
            "Take 1 tablet by mouth every morning",
            1,
            "{tbl}",
            1,
            days=30,
        ),
        MedicationDef(
            "acetaminophen",
            "313782",
            "acetaminophen 325 MG Oral Tablet",
            "Take 2 tablets by mouth every 6 hours as needed for pain",
            2,
            "{tbl}",
            4,
            as_needed=True,
        ),
        MedicationDef(
            "ibuprofen",
            "310965",
            "ibuprofen 200 MG Oral Tablet",
            "Take 2 tablets by mouth every 6 to 8 hours as needed for pain, with food",
            2,
            "{tbl}",
            3,
            as_needed=True,
            days=10,
        ),
        MedicationDef(
            "amoxicillin",
            "308191",
            "amoxicillin 500 MG Oral Capsule",
            "Take 1 capsule by mouth three times daily for 10 days",
            1,
            "{cap}",
            3,
            days=10,
        ),
    )
}

# --- Allergies --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllergyDef:
    """An allergy with its category, criticality and usual reaction."""

    codes: tuple[Code, ...]
    category: str
    criticality: str
    reaction: Code
    severity: str


ALLERGIES: tuple[AllergyDef, ...] = (
    AllergyDef(
        (sct("91936005", "Allergy to penicillin"), Code(RXNORM, "7980", "penicillin G")),
        "medication",
        "high",
        sct("126485001", "Urticaria"),
        "moderate",
    ),
    AllergyDef(
        (sct("91935009", "Allergy to peanuts"),), "food", "high", sct("39579001", "Anaphylaxis"), "severe"
    ),
    AllergyDef(
        (sct("300916003", "Latex allergy"),),
        "environment",
        "low",
        sct("40275004", "Contact dermatitis"),
        "mild",
    ),
    AllergyDef(
        (sct("300913006", "Shellfish allergy"),), "food", "high", sct("126485001", "Urticaria"), "moderate"
    ),
    AllergyDef(
        (sct("288328004", "Allergy to bee venom"),),
        "environment",
        "high",
        sct("247472004", "Wheal"),
        "moderate",
    ),
    AllergyDef(
        (sct("232347008", "Dander (animal) allergy"),),
        "environment",
        "low",
        sct("76067001", "Sneezing"),
        "mild",
    ),
)
NO_KNOWN_ALLERGY = sct("716186003", "No known allergy")

# --- Vital signs and laboratory ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VitalDef:
    """A US Core vital sign: LOINC code(s), UCUM unit and profile."""

    codes: tuple[Code, ...]
    ucum: str
    unit: str
    profile: str
    decimals: int


VITALS: dict[str, VitalDef] = {
    "bp": VitalDef(
        (loinc("85354-9", "Blood pressure panel with all children optional"),),
        "mm[Hg]",
        "mmHg",
        "us-core-blood-pressure",
        0,
    ),
    "heart_rate": VitalDef((loinc("8867-4", "Heart rate"),), "/min", "beats/minute", "us-core-heart-rate", 0),
    "respiratory_rate": VitalDef(
        (loinc("9279-1", "Respiratory rate"),), "/min", "breaths/minute", "us-core-respiratory-rate", 0
    ),
    "temperature": VitalDef(
        (loinc("8310-5", "Body temperature"),), "Cel", "C", "us-core-body-temperature", 1
    ),
    "spo2": VitalDef(
        (
            loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            loinc("2708-6", "Oxygen saturation in Arterial blood"),
        ),
        "%",
        "%",
        "us-core-pulse-oximetry",
        0,
    ),
    "height": VitalDef((loinc("8302-2", "Body height"),), "cm", "cm", "us-core-body-height", 1),
    "weight": VitalDef((loinc("29463-7", "Body weight"),), "kg", "kg", "us-core-body-weight", 1),
    "bmi": VitalDef((loinc("39156-5", "Body mass index (BMI) [Ratio]"),), "kg/m2", "kg/m2", "us-core-bmi", 1),
}
SYSTOLIC = loinc("8480-6", "Systolic blood pressure")
DIASTOLIC = loinc("8462-4", "Diastolic blood pressure")


@dataclass(frozen=True)
class LabDef:
    """A laboratory test: LOINC code, UCUM unit, reference range (per sex where it differs) and precision."""

    key: str
    code: Code
    ucum: str
    low: float | None
    high: float | None
    decimals: int
    female_range: tuple[float, float] | None = None

    def range_for(self, sex: str) -> tuple[float | None, float | None]:
        if sex == "female" and self.female_range:
            return self.female_range
        return self.low, self.high


def _lab(
    key: str,
    code: str,
    display: str,
    ucum: str,
    low: float | None,
    high: float | None,
    decimals: int,
    female_range: tuple[float, float] | None = None,
) -> LabDef:
    return LabDef(key, loinc(code, display), ucum, low, high, decimals, female_range)


LABS: dict[str, LabDef] = {
    lab.key: lab
    for lab in (
        _lab("glucose", "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
        _lab("bun", "3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
        _lab(
            "creatinine",
            "2160-0",
            "Creatinine [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0.74,
            1.35,
            2,
            female_range=(0.59, 1.04),
        ),
        _lab("sodium", "2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 136, 145, 0),
        _lab("potassium", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
        _lab("chloride", "2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
        _lab("co2", "2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0),
        _lab("calcium", "17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 8.6, 10.3, 1),
        _lab("protein", "2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 6.0, 8.3, 1),
        _lab("albumin", "1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.5, 5.0, 1),
        _lab("bilirubin", "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 1.2, 1),
        _lab(
            "alp",
            "6768-6",
            "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L",
            44,
            147,
            0,
        ),
        _lab(
            "alt",
            "1742-6",
            "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L",
            7,
            56,
            0,
        ),
        _lab(
            "ast",
            "1920-8",
            "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "U/L",
            10,
            40,
            0,
        ),
        _lab("cholesterol", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", None, 200, 0),
        _lab("hdl", "2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 40, None, 0),
        _lab(
            "ldl",
            "18262-6",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
            "mg/dL",
            None,
            100,
            0,
        ),
        _lab(
            "triglycerides", "2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", None, 150, 0
        ),
        _lab(
            "hemoglobin",
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "g/dL",
            13.5,
            17.5,
            1,
            female_range=(12.0, 15.5),
        ),
        _lab(
            "hematocrit",
            "4544-3",
            "Hematocrit [Volume Fraction] of Blood by Automated count",
            "%",
            41,
            50,
            1,
            female_range=(36, 44),
        ),
        _lab("wbc", "6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 11.0, 1),
        _lab(
            "platelets", "777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0
        ),
        _lab("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6, 1),
    )
}


@dataclass(frozen=True)
class PanelDef:
    """A laboratory panel reported as one DiagnosticReport."""

    key: str
    code: Code
    labs: tuple[str, ...] = field(default_factory=tuple)


PANELS: dict[str, PanelDef] = {
    "cmp": PanelDef(
        "cmp",
        loinc("24323-8", "Comprehensive metabolic 2000 panel - Serum or Plasma"),
        (
            "glucose",
            "bun",
            "creatinine",
            "sodium",
            "potassium",
            "chloride",
            "co2",
            "calcium",
            "protein",
            "albumin",
            "bilirubin",
            "alp",
            "alt",
            "ast",
        ),
    ),
    "lipid": PanelDef(
        "lipid",
        loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma"),
        ("cholesterol", "hdl", "ldl", "triglycerides"),
    ),
    "cbc": PanelDef(
        "cbc",
        loinc("58410-2", "CBC panel - Blood by Automated count"),
        ("hemoglobin", "hematocrit", "wbc", "platelets"),
    ),
    "hba1c": PanelDef("hba1c", loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), ("hba1c",)),
}

SMOKING_STATUS = loinc("72166-2", "Tobacco smoking status")
SMOKING_VALUES: tuple[tuple[Code, float], ...] = (
    (sct("266919005", "Never smoked tobacco"), 0.6),
    (sct("8517006", "Ex-smoker"), 0.25),
    (sct("449868002", "Smokes tobacco daily"), 0.12),
    (sct("428041000124106", "Occasional tobacco smoker"), 0.03),
)

# --- Encounters, procedures, devices ----------------------------------------------------------------------

ENCOUNTER_TYPES: dict[str, Code] = {
    "wellness": sct("162673000", "General examination of patient"),
    "well_child": sct("410620009", "Well child visit"),
    "follow_up": sct("390906007", "Follow-up encounter"),
    "acute": sct("185345009", "Encounter for symptom"),
}
PROGRESS_NOTE = loinc("11506-3", "Progress note")

DEPRESSION_SCREENING = sct("171207006", "Depression screening")
MEDICATION_RECONCILIATION = sct("430193006", "Medication reconciliation")
SPIROMETRY = sct("127783003", "Spirometry")


@dataclass(frozen=True)
class DeviceDef:
    """An implantable device, the procedure that placed it and who gets one."""

    key: str
    device: Code
    procedure: Code
    condition: str
    min_age: int
    probability: float
    manufacturer: str
    model: str


DEVICES: tuple[DeviceDef, ...] = (
    DeviceDef(
        "knee",
        sct("304120007", "Total knee replacement prosthesis"),
        sct("609588000", "Total knee replacement"),
        "osteoarthritis_knee",
        55,
        0.35,
        "Northfield Orthopedics",
        "NK-7 Cemented Knee System",
    ),
    DeviceDef(
        "stent",
        sct("705643001", "Coronary artery stent"),
        sct("36969009", "Placement of stent in coronary artery"),
        "cad",
        45,
        0.5,
        "Meridian Vascular",
        "Everflow DES 3.0 x 18 mm",
    ),
    DeviceDef(
        "pacemaker",
        sct("14106009", "Cardiac pacemaker"),
        sct("307280005", "Implantation of cardiac pacemaker"),
        "atrial_fibrillation",
        65,
        0.3,
        "Cardiotronic Systems",
        "Pulsar DR dual-chamber pacemaker",
    ),
)

# --- Immunizations ----------------------------------------------------------------------------------------


def cvx(code: str, display: str) -> Code:
    return Code(CVX, code, display)


VACCINES: dict[str, Code] = {
    "hepb": cvx("08", "Hep B, adolescent or pediatric"),
    "rotavirus": cvx("116", "rotavirus, pentavalent"),
    "dtap": cvx("20", "DTaP"),
    "hib": cvx("49", "Hib (PRP-OMP)"),
    "pcv13": cvx("133", "Pneumococcal conjugate PCV 13"),
    "ipv": cvx("10", "IPV"),
    "mmr": cvx("03", "MMR"),
    "varicella": cvx("21", "varicella"),
    "hepa": cvx("83", "Hep A, ped/adol, 2 dose"),
    "tdap": cvx("115", "Tdap"),
    "menacwy": cvx("114", "meningococcal MCV4P"),
    "hpv": cvx("165", "HPV9"),
    "flu_quadrivalent": cvx("150", "Influenza, injectable, quadrivalent, preservative free"),
    "flu_trivalent": cvx("140", "Influenza, seasonal, injectable, preservative free"),
    "covid_pfizer": cvx("208", "COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose"),
    "covid_moderna": cvx("207", "COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose"),
    "covid_unspecified": cvx("213", "SARS-COV-2 (COVID-19) vaccine, UNSPECIFIED FORMULATION"),
    "ppsv23": cvx("33", "pneumococcal polysaccharide PPV23"),
    "zoster": cvx("187", "zoster vaccine recombinant"),
}

# (vaccine, age in months) per the CDC childhood schedule, simplified.
CHILDHOOD_SCHEDULE: tuple[tuple[str, int], ...] = (
    ("hepb", 0),
    ("hepb", 1),
    ("rotavirus", 2),
    ("dtap", 2),
    ("hib", 2),
    ("pcv13", 2),
    ("ipv", 2),
    ("rotavirus", 4),
    ("dtap", 4),
    ("hib", 4),
    ("pcv13", 4),
    ("ipv", 4),
    ("hepb", 6),
    ("rotavirus", 6),
    ("dtap", 6),
    ("pcv13", 6),
    ("ipv", 6),
    ("hib", 12),
    ("pcv13", 12),
    ("mmr", 12),
    ("varicella", 12),
    ("hepa", 12),
    ("dtap", 15),
    ("hepa", 18),
    ("dtap", 48),
    ("ipv", 48),
    ("mmr", 48),
    ("varicella", 48),
    ("tdap", 132),
    ("menacwy", 132),
    ("hpv", 132),
    ("hpv", 138),
    ("menacwy", 192),
)
# Well-child visit ages in months (AAP periodicity schedule, simplified); yearly after 3 years.
WELL_CHILD_MONTHS: tuple[int, ...] = (0, 1, 2, 4, 6, 9, 12, 15, 18, 24, 30, 36)

# --- Goals and care plans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoalDef:
    """A measurable goal for a problem: the observation it targets and the bound to reach."""

    text: str
    measure: Code
    ucum: str
    low: float | None
    high: float | None


_HBA1C = loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")
_LDL = loinc("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay")
_BMI = loinc("39156-5", "Body mass index (BMI) [Ratio]")

GOALS: dict[str, GoalDef] = {
    "hypertension": GoalDef(
        "Blood pressure below 130/80 mmHg", loinc("8480-6", "Systolic blood pressure"), "mm[Hg]", None, 130
    ),
    "diabetes": GoalDef("Hemoglobin A1c below 7.0%", _HBA1C, "%", None, 7.0),
    "prediabetes": GoalDef("Hemoglobin A1c below 5.7%", _HBA1C, "%", None, 5.7),
    "hyperlipidemia": GoalDef("LDL cholesterol below 100 mg/dL", _LDL, "mg/dL", None, 100),
    "cad": GoalDef("LDL cholesterol below 70 mg/dL", _LDL, "mg/dL", None, 70),
    "obesity": GoalDef("Body mass index below 30 kg/m2", _BMI, "kg/m2", None, 30),
}
HEALTHY_WEIGHT_GOAL = GoalDef("Maintain a healthy weight", _BMI, "kg/m2", 18.5, 25)

CARE_PLAN_ACTIVITIES: dict[str, str] = {
    "hypertension": "Home blood pressure monitoring; limit sodium to 2 g per day",
    "diabetes": "Diabetes self-management education; yearly retinal and foot examination",
    "prediabetes": "Lifestyle program: 150 minutes of moderate activity per week and 5-7% weight loss",
    "hyperlipidemia": "Heart-healthy diet low in saturated fat; repeat lipid panel yearly",
    "obesity": "Nutrition counseling and graded exercise plan",
    "asthma": "Asthma action plan reviewed; avoid known triggers",
    "copd": "Pulmonary rehabilitation referral; smoking cessation support",
    "ckd": "Avoid NSAIDs; monitor creatinine and potassium every 6 months",
    "depression": "Psychotherapy referral; repeat PHQ-9 at each visit",
    "anxiety": "Cognitive behavioral therapy referral",
    "atrial_fibrillation": "Anticoagulation adherence and bleeding-risk review",
    "cad": "Cardiac risk factor control; chest pain action plan",
    "osteoarthritis_knee": "Physical therapy for quadriceps strengthening",
    "adhd": "School accommodation plan; monitor growth and blood pressure",
}
PREVENTIVE_ACTIVITY = "Yearly preventive visit with age-appropriate screening and immunizations"

# --- Care team roles --------------------------------------------------------------------------------------

ROLE_PATIENT = sct("116154003", "Patient")
ROLE_PCP = sct("446050000", "Primary care physician")

# --- People and places ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PractitionerDef:
    """A clinician of the demo hospital."""

    id: str
    given: tuple[str, ...]
    family: str
    suffix: str
    gender: str
    npi_stem: str  # 9 digits; the Luhn check digit is computed
    taxonomy: Code
    care_role: Code
    location: str


PRACTITIONERS: tuple[PractitionerDef, ...] = (
    PractitionerDef(
        "pract-1",
        ("Amara",),
        "Okafor",
        "MD",
        "female",
        "142851937",
        Code(NUCC, "207Q00000X", "Family Medicine Physician"),
        ROLE_PCP,
        "loc-2",
    ),
    PractitionerDef(
        "pract-2",
        ("Daniel", "J."),
        "Kowalski",
        "MD",
        "male",
        "163029584",
        Code(NUCC, "207R00000X", "Internal Medicine Physician"),
        ROLE_PCP,
        "loc-1",
    ),
    PractitionerDef(
        "pract-3",
        ("Lucía",),
        "Fernández",
        "MD",
        "female",
        "155730482",
        Code(NUCC, "208000000X", "Pediatrics Physician"),
        sct("82296001", "Pediatrician"),
        "loc-2",
    ),
    PractitionerDef(
        "pract-4",
        ("Hiroshi",),
        "Tanaka",
        "MD",
        "male",
        "120648875",
        Code(NUCC, "207RC0000X", "Cardiovascular Disease Physician"),
        sct("17561000", "Cardiologist"),
        "loc-1",
    ),
    PractitionerDef(
        "pract-5",
        ("Priya",),
        "Raman",
        "MD",
        "female",
        "139274016",
        Code(NUCC, "207RE0101X", "Endocrinology, Diabetes & Metabolism Physician"),
        sct("61894003", "Endocrinologist"),
        "loc-1",
    ),
    PractitionerDef(
        "pract-6",
        ("Megan", "R."),
        "O'Connell",
        "NP",
        "female",
        "178315260",
        Code(NUCC, "363LF0000X", "Family Nurse Practitioner"),
        sct("224571005", "Nurse practitioner"),
        "loc-2",
    ),
)

# (city, postal codes) in the hospital's catchment; all in Massachusetts.
CITIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Springfield", ("01103", "01104", "01108", "01109")),
    ("Chicopee", ("01013", "01020")),
    ("Holyoke", ("01040",)),
    ("Westfield", ("01085",)),
    ("West Springfield", ("01089",)),
    ("Agawam", ("01001",)),
    ("Longmeadow", ("01106",)),
    ("Ludlow", ("01056",)),
)
STREETS: tuple[str, ...] = (
    "Maple Street",
    "Chestnut Street",
    "State Street",
    "Elm Avenue",
    "Riverside Drive",
    "Sumner Avenue",
    "Pine Hill Road",
    "Orchard Lane",
    "Birch Court",
    "Mill Pond Road",
    "Liberty Street",
    "Boston Road",
    "Allen Street",
    "Cooley Street",
)


@dataclass(frozen=True)
class Heritage:
    """A naming tradition with the OMB race/ethnicity it is mostly reported with, and how common it is."""

    key: str
    weight: float
    race: Code
    hispanic: bool
    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]
    language: Code | None = None


OMB = "urn:oid:2.16.840.1.113883.6.238"
RACE_WHITE = Code(OMB, "2106-3", "White")
RACE_BLACK = Code(OMB, "2054-5", "Black or African American")
RACE_ASIAN = Code(OMB, "2028-9", "Asian")
ETHNICITY_HISPANIC = Code(OMB, "2135-2", "Hispanic or Latino")
ETHNICITY_NOT_HISPANIC = Code(OMB, "2186-5", "Not Hispanic or Latino")
SPANISH = Code("urn:ietf:bcp:47", "es", "Spanish")
ENGLISH = Code("urn:ietf:bcp:47", "en-US", "English (United States)")

HERITAGES: tuple[Heritage, ...] = (
    Heritage(
        "anglo",
        0.34,
        RACE_WHITE,
        False,
        ("James", "Michael", "William", "Thomas", "Ryan", "Ethan", "Noah", "Liam", "Owen", "Henry", "Jack"),
        ("Emily", "Sarah", "Olivia", "Emma", "Hannah", "Abigail", "Grace", "Claire", "Margaret", "Ava"),
        (
            "Smith",
            "Johnson",
            "Miller",
            "Davis",
            "Wilson",
            "Anderson",
            "Taylor",
            "Moore",
            "O'Brien",
            "Sullivan",
        ),
    ),
    Heritage(
        "european",
        0.14,
        RACE_WHITE,
        False,
        ("François", "Björn", "Søren", "Jürgen", "Raphaël", "Mateusz", "Luca", "Stefan", "Anton", "Élie"),
        ("Zoë", "Chloé", "Renée", "Noémie", "Anaïs", "Léa", "Ingrid", "Małgorzata", "Sophie", "Giulia"),
        (
            "Müller",
            "Ødegård",
            "Lefèvre",
            "Schröder",
            "Nowak",
            "Rossi",
            "Dubois",
            "Lindqvist",
            "Kowalczyk",
            "Weiß",
        ),
    ),
    Heritage(
        "hispanic",
        0.24,
        RACE_WHITE,
        True,
        ("José", "Andrés", "Joaquín", "Martín", "Ramón", "Luis", "Diego", "Mateo", "Santiago", "Héctor"),
        ("María", "Sofía", "Lucía", "Inés", "Valentina", "Camila", "Isabel", "Ana", "Mónica", "Ximena"),
        (
            "García",
            "Hernández",
            "Núñez",
            "Martínez",
            "Peña",
            "Rodríguez",
            "López",
            "Ortiz",
            "Rivera",
            "Muñoz",
        ),
        language=SPANISH,
    ),
    Heritage(
        "african_american",
        0.16,
        RACE_BLACK,
        False,
        ("Marcus", "Darius", "Andre", "Malik", "Isaiah", "Jerome", "Terrence", "Elijah", "Jalen", "Kofi"),
        ("Aaliyah", "Imani", "Keisha", "Jasmine", "Nia", "Ebony", "Maya", "Tiana", "Destiny", "Adaeze"),
        (
            "Washington",
            "Jackson",
            "Robinson",
            "Harris",
            "Coleman",
            "Okafor",
            "Brooks",
            "Freeman",
            "Booker",
            "Mensah",
        ),
    ),
    Heritage(
        "asian",
        0.12,
        RACE_ASIAN,
        False,
        ("Minh", "Wei", "Hiroshi", "Arjun", "Rohan", "Jun", "Sanjay", "Tuấn", "Kenji", "Vikram"),
        ("Mei", "Priya", "Yuki", "Ananya", "Linh", "Ji-woo", "Aiko", "Kavya", "Thảo", "Xiu"),
        ("Nguyễn", "Kim", "Wang", "Patel", "Shah", "Chen", "Tanaka", "Tran", "Park", "Iyer"),
    ),
)
