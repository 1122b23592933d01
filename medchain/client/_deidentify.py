"""Research copies of FHIR R4 resources, de-identified in the spirit of HIPAA Safe Harbor
(45 CFR 164.514(b)(2)): what names, reaches or locates a person goes; what research needs stays.

The walk is generic (recursive over JSON objects and arrays, steered by the key rules below), so
it covers every resource type, Bundles and contained resources alike, without a per-type table.

- Removed: names, identifiers, telecom, addresses, photos, contacts, narrative `text`, links,
  the `display` of references (it often names the patient or clinician), note authors given as
  text, device serial numbers and UDIs, location coordinates, attachment payloads and URLs,
  and extensions that carry a name, address or contact (e.g. mother's maiden name).
- Dates: every date, dateTime and instant keeps its year only; an instant (which cannot hold a
  bare year) becomes the first instant of that year. Birth years that would show an age of 90
  or more are top-coded to `reference_year - 90`; ages of 90 or more become ">= 90 years".
- Ids and references become keyed pseudonyms: HMAC-SHA256(pseudonym_key, original), first 16
  hex digits. One key (one research grant) maps a record to the same pseudonym every time, so
  an institution can link a patient's records without learning who they are; another key gives
  unlinkable pseudonyms. A resource's id is pseudonymised as "Type/id", the same text that its
  references carry, so the copy's ids and references still agree.
- Meta: `versionId`, `lastUpdated` and `source` are dropped (they leak edit times and the
  source system); every resource is labelled PSEUDED (see SECURITY_LABEL).
- Remaining free text is scrubbed of the names, identifier values, phone numbers, emails and
  street details found anywhere in the input, and of full dates (cut to the year).
- Required elements that lose all their content keep the HL7 data-absent-reason "masked"
  extension instead, so the copy still validates.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from medchain.client._fhir import validate_resource
from medchain.types import MedchainError

PSEUDONYM_HEX: Final = 16
MIN_PSEUDONYM_KEY_SIZE: Final = 16
PSEUDONYM_BASE: Final = "https://pseudonym.invalid/fhir/"  # RFC 2606: never resolves
REDACTED: Final = "[redacted]"
UCUM: Final = "http://unitsofmeasure.org"
TOP_AGE: Final = 90

SECURITY_LABEL: Final[Mapping[str, str]] = {
    # PSEUDED rather than ANONYED: the copy keeps keyed pseudonyms, so whoever holds the key
    # (the patient's client) can re-link it; HL7 defines ANONYED for data that cannot be.
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}
DATA_ABSENT_MASKED: Final[Mapping[str, str]] = {
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
    "valueCode": "masked",
}

# Keys removed wherever they occur (with their `_key` extension sibling).
DROP_KEYS: Final = frozenset(
    {
        "telecom",
        "photo",
        "contact",
        "authorString",
        "serialNumber",
        "udiCarrier",
        "distinctIdentifier",
        "position",
        "fhir_comments",
        "valueHumanName",
        "valueAddress",
        "valueContactPoint",
        "valueIdentifier",
        "ifNoneExist",
    }
)
# Keys removed when they hold an object or array (Identifier, Address, Narrative, Patient and
# Bundle links); `name` only when it holds HumanNames. As strings they are labels, free text or
# URLs: scrubbed, pseudonymised (`identifier`) or masked (`address`, an endpoint URL) instead,
# because some of them are required.
DROP_COMPLEX_KEYS: Final = frozenset({"identifier", "address", "link", "text"})
HUMAN_NAME_KEYS: Final = frozenset(
    {"id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period"}
)
# `display` survives only beside a code (Coding and friends), where it names the concept.
CODING_KEYS: Final = frozenset({"system", "code"})
REFERENCE_KEYS: Final = frozenset({"reference", "fullUrl", "location"})
PSEUDONYM_KEYS: Final = frozenset({"id", "uid", "identifier"})
META_DROP_KEYS: Final = frozenset({"versionId", "lastUpdated", "source"})
ATTACHMENT_KEYS: Final = frozenset({"contentType", "data", "size", "hash", "title", "creation"})
ATTACHMENT_DROP_KEYS: Final = frozenset({"url", "data", "hash"})
# A reference `display` naming one of these (or an unknown target) is taken to be a name: its
# words are redacted from free text, not just the whole string.
PERSON_TYPES: Final = frozenset(
    {"Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Person"}
)
# Attachments carry scans and photos that cannot be scrubbed: their payload and URL go.
ATTACHMENT_PARENT_KEYS: Final = frozenset({"attachment", "presentedForm", "content"})
IDENTIFYING_EXTENSIONS: Final = frozenset(
    {
        "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
        "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
    }
)
# Elements typed `instant` (other than the `valueInstant`-style choices): the only dates that
# cannot be written as a bare year. Paths start at the nearest resource; arrays are transparent.
INSTANT_PATHS: Final = frozenset(
    {
        "Appointment.start",
        "Appointment.end",
        "AppointmentResponse.start",
        "AppointmentResponse.end",
        "AuditEvent.recorded",
        "Bundle.timestamp",
        "Bundle.entry.request.ifModifiedSince",
        "Bundle.entry.response.lastModified",
        "DeviceMetric.calibration.time",
        "DiagnosticReport.issued",
        "DocumentReference.date",
        "Media.issued",
        "Observation.issued",
        "Provenance.recorded",
        "Slot.start",
        "Slot.end",
        "Subscription.end",
        "SubscriptionStatus.notificationEvent.timestamp",
    }
)
INSTANT_KEYS: Final = frozenset({"when", "lastUpdated"})  # Signature.when, Meta.lastUpdated
# String values under these keys are codes, URIs or ids, never free text: not scrubbed.
SCRUB_EXEMPT_KEYS: Final = frozenset(
    {
        "resourceType",
        "display",  # only beside a code (see CODING_KEYS): terminology, not people
        "system",
        "url",
        "code",
        "version",
        "status",
        "use",
        "gender",
        "type",
        "language",
        "contentType",
        "comparator",
        "mode",
        "method",
        "relation",
        "intent",
        "priority",
        "kind",
        "data",
        "profile",
        "valueCode",
        "valueUri",
        "valueUrl",
        "valueCanonical",
        "valueId",
        "valueOid",
        "valueUuid",
        "valueBase64Binary",
    }
)
# Words too common in clinical text to redact just because they sat in a name or display.
NAME_STOP_WORDS: Final = frozenset(
    {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "md", "phd", "rn", "np", "jr", "sr"}
    | {"de", "la", "le", "du", "da", "di", "van", "von", "der", "den", "the", "of", "and"}
)
# UCUM time units, in units per year, for telling an age of 90 or more.
_UNITS_PER_YEAR: Final[Mapping[str, float]] = {
    "a": 1.0,
    "mo": 12.0,
    "wk": 365.25 / 7,
    "d": 365.25,
    "h": 365.25 * 24,
    "min": 365.25 * 24 * 60,
}

_DATE = re.compile(
    r"^(\d{4})(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_DATE_IN_TEXT = re.compile(
    r"(?<![\w-])(\d{4})-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12]\d|3[01])"
    r"(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?(?![\w-])"
)
_OTHER_PII_IN_TEXT = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # email addresses
    r"|(?<!\w)\d{3}-\d{2}-\d{4}(?!\w)"  # SSN-shaped numbers
    r"|(?<![\w/.])\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(?!\w|[/.]\w)"  # 05/04/2023-style dates
)
_PHONE_IN_TEXT = re.compile(r"(?<![\w.+/-])\+?\(?\d[\d ().-]{5,}\d(?!\w|[./-]\w)")
_PHONE_MIN_DIGITS = 7
_YEAR_RANGE = re.compile(r"\d{4} ?- ?\d{4}")
_WORD = re.compile(r"[^\W\d_]{2,}")
_RESTFUL = re.compile(
    r"^(?P<base>https?://[^\s?#]+?/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_TYPE_ONLY = re.compile(r"^[A-Z][A-Za-z]+$")
_DROP: Final = object()


class InvalidPseudonymKey(MedchainError):
    code = "invalid_pseudonym_key"


def deidentify(
    resource: Mapping[str, Any],
    pseudonym_key: bytes,
    *,
    reference_year: int | None = None,
) -> dict[str, Any]:
    """The research copy of a FHIR R4 resource; the input is validated and never modified.

    `reference_year` (default: this year, UTC) is the year ages are judged at when deciding
    whether a birth year reveals an age of 90 or more.
    """
    if len(pseudonym_key) < MIN_PSEUDONYM_KEY_SIZE:
        raise InvalidPseudonymKey(
            f"a pseudonym key needs at least {MIN_PSEUDONYM_KEY_SIZE} random bytes, got "
            f"{len(pseudonym_key)}; a short key lets anyone recompute pseudonyms from "
            "guessed ids — derive one per research grant from a secret"
        )
    source = validate_resource(resource)
    year = reference_year if reference_year is not None else datetime.now(UTC).year
    walker = _Deidentifier(pseudonym_key, year, _Scrubber.collect(source))
    return walker.resource(source, contained=False)


# -- free-text scrubbing --------------------------------------------------------------------


@dataclass
class _Scrubber:
    """Redacts, from free text, identifying strings found elsewhere in the same input."""

    pattern: re.Pattern[str] | None

    @classmethod
    def collect(cls, resource: Mapping[str, Any]) -> _Scrubber:
        found = _Found()
        found.walk(resource)
        terms = sorted(found.phrases | found.words, key=lambda t: (-len(t), t))
        if not terms:
            return cls(None)
        alternatives = "|".join(re.escape(t) for t in terms)
        return cls(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))

    def __call__(self, text: str) -> str:
        if self.pattern is not None:
            text = self.pattern.sub(REDACTED, text)
        text = _DATE_IN_TEXT.sub(lambda m: m.group(1), text)  # before phone numbers: both
        text = _OTHER_PII_IN_TEXT.sub(REDACTED, text)  # are runs of digits and dashes
        return _PHONE_IN_TEXT.sub(_redact_phone, text)


@dataclass
class _Found:
    """Identifying strings in an input: whole `phrases` and the name `words` inside them."""

    phrases: set[str] = field(default_factory=set)
    words: set[str] = field(default_factory=set)

    def walk(self, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                self.walk(item)
        elif isinstance(value, dict):
            self._object(value)
            for item in value.values():
                self.walk(item)

    def _object(self, obj: Mapping[str, Any]) -> None:
        coding = not CODING_KEYS.isdisjoint(obj)
        for key, value in obj.items():
            if key in ("name", "valueHumanName") and _is_human_name(value):
                for name in _as_list(value):
                    if isinstance(name, Mapping):
                        parts = [name.get("family"), name.get("text"), *_as_list(name.get("given"))]
                        self._names(p for p in parts if isinstance(p, str))
            elif key in ("identifier", "telecom", "valueIdentifier", "valueContactPoint"):
                for item in _as_list(value):
                    if isinstance(item, Mapping) and isinstance(item.get("value"), str):
                        self._phrase(item["value"])
            elif key in ("address", "valueAddress") and not isinstance(value, str):
                for item in _as_list(value):
                    if isinstance(item, Mapping):
                        lines = _as_list(item.get("line"))
                        for part in [*lines, *(item.get(k) for k in ("city", "district", "text"))]:
                            if isinstance(part, str):
                                self._phrase(part)
                        if isinstance(item.get("postalCode"), str):
                            self._phrase(item["postalCode"])
            elif key == "authorString" and isinstance(value, str):
                self._names([value])
            elif key == "display" and not coding and isinstance(value, str):
                if _target_type(obj) in PERSON_TYPES | {None}:
                    self._names([value])
                else:
                    self._phrase(value)
        if obj.get("url") in IDENTIFYING_EXTENSIONS and isinstance(obj.get("valueString"), str):
            self._names([obj["valueString"]])

    def _names(self, texts: Iterable[str]) -> None:
        for text in texts:
            self._phrase(text)
            self.words.update(w for w in _WORD.findall(text) if w.lower() not in NAME_STOP_WORDS)

    def _phrase(self, text: str) -> None:
        text = text.strip()
        if len(text) >= 4:
            self.phrases.add(text)


# -- the walk -------------------------------------------------------------------------------


@dataclass
class _Deidentifier:
    key: bytes
    reference_year: int
    scrub: _Scrubber

    def resource(self, obj: Mapping[str, Any], *, contained: bool) -> dict[str, Any]:
        resource_type = obj["resourceType"]
        body = {k: v for k, v in obj.items() if k != "meta"}
        out = self._object(body, resource_type, contained=contained)
        meta_in = {
            k: v for k, v in obj.get("meta", {}).items() if k.lstrip("_") not in META_DROP_KEYS
        }
        meta = self._object(meta_in, f"{resource_type}.meta") if meta_in else {}
        security = [s for s in meta.get("security", []) if not _same_coding(s, SECURITY_LABEL)]
        meta["security"] = [*security, dict(SECURITY_LABEL)]
        result = {k: out.pop(k) for k in ("resourceType", "id") if k in out}
        result["meta"] = meta
        result.update(out)
        return result

    def _object(
        self, obj: Mapping[str, Any], path: str, *, key: str = "", contained: bool = False
    ) -> Any:
        is_resource = isinstance(obj.get("resourceType"), str)
        coding = not CODING_KEYS.isdisjoint(obj)
        attachment = (
            key in ATTACHMENT_PARENT_KEYS
            or key.endswith("Attachment")
            or ("url" in obj and not ATTACHMENT_KEYS.isdisjoint(obj))
        )
        out: dict[str, Any] = {}
        for name, value in obj.items():
            base = name.removeprefix("_")
            primary = obj.get(base)
            if (
                base in DROP_KEYS
                or (base in DROP_COMPLEX_KEYS and isinstance(primary, dict | list))
                or (base == "name" and _is_human_name(primary))
                or (base == "display" and not coding)
                or (attachment and base in ATTACHMENT_DROP_KEYS)
                # Base64 payloads (Signature.data) cannot be scrubbed; SampledData keeps its data.
                or (base == "data" and isinstance(primary, str) and "dimensions" not in obj)
            ):
                continue
            if base == "address" and isinstance(primary, str):
                out["_address"] = {"extension": [dict(DATA_ABSENT_MASKED)]}
                continue
            if name.startswith("_"):
                new = self._value(name, value, path, obj)
            else:
                new = self._value(name, value, f"{path}.{name}", obj, in_resource=is_resource)
            if new is not _DROP:
                out.setdefault(name, new)
        if is_resource and isinstance(obj.get("id"), str):
            original = obj["id"]
            out["id"] = self._pseudonym(f"#{original}" if contained else f"{path}/{original}")
        if not out and obj:
            return {"extension": [dict(DATA_ABSENT_MASKED)]}
        return out if out else _DROP

    def _value(
        self, key: str, value: Any, path: str, parent: Mapping[str, Any], in_resource: bool = False
    ) -> Any:
        if isinstance(value, dict):
            if isinstance(value.get("resourceType"), str):
                return self.resource(value, contained=key == "contained")
            if key in ("extension", "modifierExtension"):
                return self._extension(key, value, path)
            if key.endswith("Age"):
                return self._age(value, path, assume_years=True)
            if key.endswith("Range") or key == "age":
                return self._range(value, path)
            return self._object(value, path, key=key)
        if isinstance(value, list):
            items = [self._value(key, item, path, parent, in_resource) for item in value]
            kept = [item for item in items if item is not _DROP]
            return kept if kept else _DROP
        if isinstance(value, str):
            return self._string(key, value, path, parent, in_resource)
        return value

    def _string(
        self, key: str, value: str, path: str, parent: Mapping[str, Any], in_resource: bool
    ) -> str:
        if key == "id" and in_resource:
            return value  # replaced by the resource's "Type/id" pseudonym in _object
        if key in PSEUDONYM_KEYS:
            return self._pseudonym(value)
        if key in REFERENCE_KEYS:
            return self._reference(value)
        if key == "url" and "method" in parent:  # Bundle.entry.request.url
            target = value.split("?", 1)[0]
            return target if _TYPE_ONLY.match(target) else self._reference(target)
        date = _DATE.match(value)
        if date:
            year = int(date.group(1))
            if key == "birthDate":
                year = max(year, self._age_cap_year(parent))
            if date.group(4) and self._is_instant(key, path):
                return f"{year:04d}-01-01T00:00:00Z"
            return f"{year:04d}"
        if key in SCRUB_EXEMPT_KEYS or key.endswith("Id"):
            return value
        return self.scrub(value)

    def _extension(self, key: str, ext: Mapping[str, Any], path: str) -> Any:
        if ext.get("url") in IDENTIFYING_EXTENSIONS:
            return _DROP
        out = self._object(ext, path)
        if out is _DROP or not any(k.startswith("value") or k == "extension" for k in out):
            if key == "extension":
                return _DROP  # an extension without a value says nothing
            # A modifier extension changes the meaning of its element: keep it, masked.
            return {"url": ext.get("url"), "extension": [dict(DATA_ABSENT_MASKED)]}
        return out

    def _age(self, age: Mapping[str, Any], path: str, *, assume_years: bool) -> Any:
        """An Age (or a range bound) of 90 years or more becomes the single category 90+."""
        years = _years(age, assume_years=assume_years)
        if years is None or years < TOP_AGE:
            return self._object(age, path)
        capped: dict[str, Any] = {"value": TOP_AGE, "unit": "years", "system": UCUM, "code": "a"}
        if assume_years:  # an Age may say ">= 90"; a Range bound (SimpleQuantity) may not
            capped["comparator"] = ">="
        return capped

    def _range(self, range_: Mapping[str, Any], path: str) -> Any:
        out = self._object(range_, path)
        if isinstance(out, dict):
            for bound in ("low", "high"):
                if isinstance(range_.get(bound), Mapping):
                    out[bound] = self._age(range_[bound], path, assume_years=False)
        return out

    def _age_cap_year(self, person: Mapping[str, Any]) -> int:
        """Birth years before this one would reveal an age of 90 or more (at death, if
        recorded), so they are raised to it: "born in or before" this year."""
        year = self.reference_year
        deceased = _DATE.match(str(person.get("deceasedDateTime", "")))
        if deceased:
            year = min(year, int(deceased.group(1)))
        return year - TOP_AGE

    def _is_instant(self, key: str, path: str) -> bool:
        return key in INSTANT_KEYS or key.endswith("Instant") or path in INSTANT_PATHS

    def _pseudonym(self, original: str) -> str:
        return self._digest(original).hex()[:PSEUDONYM_HEX]

    def _digest(self, original: str) -> bytes:
        return hmac.new(self.key, original.encode("utf-8"), hashlib.sha256).digest()

    def _reference(self, ref: str) -> str:
        """A pseudonym that keeps the reference's shape, so it still resolves in the copy."""
        if ref in ("", "#"):
            return ref  # "#" points at the containing resource
        if ref.startswith("#"):
            return "#" + self._pseudonym(ref)
        restful = _RESTFUL.match(ref)
        if restful:
            logical = f"{restful['type']}/{restful['id']}"  # version and server base dropped
            base = PSEUDONYM_BASE if restful["base"] else ""
            return f"{base}{restful['type']}/{self._pseudonym(logical)}"
        if ":" in ref:  # urn:uuid:, urn:oid: or another absolute URI: stay an absolute URI
            return f"urn:uuid:{uuid.UUID(bytes=self._digest(ref)[:16], version=4)}"
        return self._pseudonym(ref)


def _years(quantity: Mapping[str, Any], *, assume_years: bool) -> float | None:
    """A time quantity in years; None if it is not one (a unitless Age counts as years)."""
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    unit = str(quantity.get("code") or quantity.get("unit") or ("a" if assume_years else ""))
    per_year = _UNITS_PER_YEAR.get(unit)
    if per_year is None and unit.lower() in ("y", "yr", "yrs", "year", "years"):
        per_year = 1.0
    return None if per_year is None else value / per_year


def _redact_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if _YEAR_RANGE.fullmatch(text):
        return text
    return REDACTED if sum(c.isdigit() for c in text) >= _PHONE_MIN_DIGITS else text


def _target_type(reference: Mapping[str, Any]) -> str | None:
    restful = _RESTFUL.match(str(reference.get("reference", "")))
    if restful:
        return restful["type"]
    kind = reference.get("type")
    return kind.rsplit("/", 1)[-1] if isinstance(kind, str) else None


def _is_human_name(value: Any) -> bool:
    """A HumanName or a list of them (not, say, MedicinalProductDefinition.name, required)."""
    names = _as_list(value)
    return bool(names) and all(
        isinstance(n, Mapping) and {k.removeprefix("_") for k in n} <= HUMAN_NAME_KEYS
        for n in names
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _same_coding(a: Any, b: Mapping[str, Any]) -> bool:
    return isinstance(a, Mapping) and a.get("system") == b["system"] and a.get("code") == b["code"]
