"""Which record versions join a patient's emergency set, and their wrap to its key.

Apart from `_emergency` so that record writing (`_sdk`) can use it: every writer's
client, the patient's or a clinician's, must wrap a record of a type in the set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from medchain.app import (
    OPTIONAL_EMERGENCY_TYPES,
    EmergencyPolicy,
    EmergencyWrapArgs,
    emergency_context,
)
from medchain.crypto import emergency_wrap

BLOOD_GROUP_CODES = frozenset({"882-1", "883-9", "10331-7", "34530-6"})
"""LOINC codes of blood group observations (ABO and Rh; ABO; Rh; ABO and Rh panel):
the Observations the client puts into the emergency set."""


def in_emergency_set(policy: EmergencyPolicy | None, resource: Mapping[str, Any]) -> bool:
    """Whether `resource` belongs in the set `policy` names: a type in the set, and for
    Observations (optional in the set) only the blood group."""
    resource_type = str(resource.get("resourceType", ""))
    if policy is None or not policy.enabled or resource_type not in policy.resource_types:
        return False
    return resource_type not in OPTIONAL_EMERGENCY_TYPES or is_blood_group(resource)


def is_blood_group(resource: Mapping[str, Any]) -> bool:
    code = resource.get("code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    return any(isinstance(c, Mapping) and c.get("code") in BLOOD_GROUP_CODES for c in codings)


def emergency_wrap_args(
    policy: EmergencyPolicy, content_key: bytes, record_id: bytes, version: int
) -> EmergencyWrapArgs:
    """The version's content key sealed to the patient's emergency key."""
    wrap = emergency_wrap(policy.public_key, content_key, emergency_context(record_id, version))
    return EmergencyWrapArgs(wrap.ephemeral, wrap.sealed_key)
