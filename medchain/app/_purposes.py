"""Purposes of use: why a reader may read (HL7 v3 ActReason, the PurposeOfUse value
set FHIR's Consent and security labels use). A grant names the purposes it allows; an
authenticated read names the purpose it is made for, and the disclosure log keeps it.
"""

from __future__ import annotations

import enum

PURPOSE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
"""The code system of `PurposeOfUse` codes, as FHIR resources name it."""


class PurposeOfUse(enum.StrEnum):
    TREATMENT = "TREAT"
    EMERGENCY_TREATMENT = "ETREAT"
    CARE_MANAGEMENT = "CAREMGT"
    PAYMENT = "HPAYMT"
    OPERATIONS = "HOPERAT"
    RESEARCH = "HRESCH"
    CLINICAL_TRIAL = "CLINTRCH"
    PUBLIC_HEALTH = "PUBHLTH"
    LEGAL = "HLEGAL"
    PATIENT_REQUEST = "PATRQT"
    FAMILY_REQUEST = "FAMRQT"
    POWER_OF_ATTORNEY = "PWATRNY"


PURPOSE_DISPLAY: dict[PurposeOfUse, str] = {
    PurposeOfUse.TREATMENT: "treatment",
    PurposeOfUse.EMERGENCY_TREATMENT: "emergency treatment",
    PurposeOfUse.CARE_MANAGEMENT: "care management",
    PurposeOfUse.PAYMENT: "healthcare payment",
    PurposeOfUse.OPERATIONS: "healthcare operations",
    PurposeOfUse.RESEARCH: "healthcare research",
    PurposeOfUse.CLINICAL_TRIAL: "clinical trial research",
    PurposeOfUse.PUBLIC_HEALTH: "public health",
    PurposeOfUse.LEGAL: "legal",
    PurposeOfUse.PATIENT_REQUEST: "patient requested",
    PurposeOfUse.FAMILY_REQUEST: "family requested",
    PurposeOfUse.POWER_OF_ATTORNEY: "power of attorney",
}

DEFAULT_GRANT_PURPOSES: tuple[PurposeOfUse, ...] = (PurposeOfUse.TREATMENT,)
"""What a grant allows when its granter names no purpose."""
