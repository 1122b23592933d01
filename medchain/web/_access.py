"""Who may act on a patient's data, as the access page shows it: their proxies (and the
patients this account acts for), their emergency (break-glass) policy, and their
standing consents; and reading a posted consent or proxy form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from medchain.app import Proxy, ProxyRelation, ProxyScope, PurposeOfUse, StandingConsent
from medchain.client import EmergencyChain, MedchainClient, patients_of, proxies_of
from medchain.crypto import format_address, parse_address
from medchain.web._pages import InvalidForm
from medchain.web._records import name_of

CONSENT_PURPOSES = (
    (PurposeOfUse.TREATMENT, "treatment"),
    (PurposeOfUse.EMERGENCY_TREATMENT, "emergency treatment"),
    (PurposeOfUse.CARE_MANAGEMENT, "care management"),
    (PurposeOfUse.RESEARCH, "research"),
)
"""The purposes the consent form offers (the CLI takes any PurposeOfUse)."""
_PURPOSE_WORDS = dict(CONSENT_PURPOSES)
SCOPES = (
    (ProxyScope.READ, "read the records"),
    (ProxyScope.GRANT, "share them and set consents"),
    (ProxyScope.DEVICES, "manage the devices"),
    (ProxyScope.WRITE, "write records"),
)


@dataclass(frozen=True)
class ProxyRow:
    name: str
    address: str
    relation: str
    scopes: str
    until: str


@dataclass(frozen=True)
class ConsentRow:
    consent_id: int
    reader: str
    covers: str
    purposes: str
    state: str
    in_force: bool


@dataclass(frozen=True)
class AccessPage:
    proxies: tuple[ProxyRow, ...]
    acting_for: tuple[ProxyRow, ...]
    """The patients this account is a proxy of (on its own page only)."""
    emergency: str
    emergency_on: bool
    consents: tuple[ConsentRow, ...]


def _until(expires_ms: int) -> str:
    if not expires_ms:
        return "no end"
    return "until " + datetime.fromtimestamp(expires_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _proxy_row(client: MedchainClient, who: bytes, proxy: Proxy) -> ProxyRow:
    """`proxy` as a row naming `who`: the proxy on the patient's list, the patient on
    the proxy's."""
    scopes = ", ".join(s.value for s in proxy.scopes)
    return ProxyRow(
        name_of(client, who), format_address(who), proxy.relation.value, scopes,
        _until(proxy.expires_ms),
    )  # fmt: skip


def _emergency(client: MedchainClient, patient: bytes) -> tuple[str, bool]:
    chain = client.chain
    policy = chain.emergency_policy(patient) if isinstance(chain, EmergencyChain) else None
    if policy is None or not policy.enabled:
        return "Off: no clinician can open the patient's records in an emergency.", False
    return (
        f"On: a clinician may open the patient's {', '.join(policy.resource_types)} records in an "
        f"emergency once {policy.threshold} of {len(policy.shares)} member organisations "
        f"agree (set at block {policy.set_height}).",
        True,
    )


def _consent_row(client: MedchainClient, consent: StandingConsent, now_ms: int) -> ConsentRow:
    covers = ", ".join(consent.resource_types) or "every record"
    if consent.codes:
        covers += f" with codes {', '.join(consent.codes)}"
    if consent.organisations:
        covers += f" by {', '.join(consent.organisations)}"
    if consent.revoked_height:
        state = f"revoked at block {consent.revoked_height}"
    else:
        state = "in force, " + _until(consent.expires_ms) if consent.in_force(now_ms) else "ended"
    return ConsentRow(
        consent.consent_id,
        name_of(client, consent.reader),
        covers,
        ", ".join(_PURPOSE_WORDS.get(p, p.value) for p in consent.purposes),
        state,
        consent.in_force(now_ms),
    )


def access_page(client: MedchainClient, patient: bytes, now_ms: int) -> AccessPage:
    proxies = tuple(_proxy_row(client, p.proxy, p) for p in proxies_of(client, patient))
    acting: tuple[ProxyRow, ...] = ()
    if patient == client.address:
        held = [p for p in patients_of(client) if p.active(now_ms)]
        acting = tuple(_proxy_row(client, p.patient, p) for p in held)
    emergency, on = _emergency(client, patient)
    consents = tuple(_consent_row(client, c, now_ms) for c in client.consents(patient))
    return AccessPage(proxies, acting, emergency, on, consents)


def _reader(form: Mapping[str, str], field: str) -> bytes:
    text = form.get(field, "").strip()
    if not text:
        raise InvalidForm("give the account's address (mc1…)")
    return parse_address(text)


def consent_from_form(
    form: Mapping[str, str],
) -> tuple[bytes, tuple[str, ...], tuple[PurposeOfUse, ...]]:
    """The reader, resource types and purposes a posted consent form names."""
    reader = _reader(form, "reader")
    types = tuple(t.strip() for t in form.get("types", "").split(",") if t.strip())
    bad = [t for t in types if not t.isalpha() or not t[0].isupper()]
    if bad:
        raise InvalidForm(
            f"{bad[0][:40]!r} is not a FHIR resource type; write e.g. Observation, Condition"
        )
    purposes = tuple(p for p, _ in CONSENT_PURPOSES if form.get(f"purpose-{p.value}"))
    if not purposes:
        raise InvalidForm("tick at least one purpose the reader may read for")
    return reader, types, purposes


def proxy_from_form(form: Mapping[str, str]) -> tuple[bytes, ProxyRelation, tuple[ProxyScope, ...]]:
    """The proxy, relation and scopes a posted proxy form names."""
    proxy = _reader(form, "proxy")
    try:
        relation = ProxyRelation(form.get("relation", ""))
    except ValueError:
        raise InvalidForm("choose how the proxy is related to you") from None
    scopes = tuple(s for s, _ in SCOPES if form.get(f"scope-{s.value}"))
    if not scopes:
        raise InvalidForm("tick at least one thing the proxy may do for you")
    return proxy, relation, scopes
