"""A patient's notices and accounting of disclosures in words: a record a doctor wrote
links to its page, a proxy named says its scopes; every node's reads, newest first,
with who read, what, for which purpose and through which node, and a node whose log
does not hold up named as such."""

from __future__ import annotations

import json

from medchain.app import ProxyRelation, ProxyScope
from medchain.client import NodeDisclosures, SeenDisclosure, add_proxy
from medchain.crypto import format_address
from medchain.types import Disclosure, DisclosureKind, ReadBasis
from medchain.web._feed import disclosure_rows, notice_rows
from tests.web.conftest import DOCTOR_NAME, EXAMPLES, SECOND_DOCTOR_NAME, Ward

NODE_A, NODE_B = b"\xaa" * 20, b"\xbb" * 20
T = 1_714_550_400_000  # 2024-05-01T08:00:00Z


def test_notices_say_who_did_what_newest_first(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    patient = ward.client(ward.patient)
    condition = json.loads((EXAMPLES / "condition.json").read_text())
    patient.put_record(ward.patient.address, condition)  # her own: no notice
    add_proxy(patient, ward.second.address, ProxyRelation.PARENT, (ProxyScope.GRANT,))
    proxy, record = notice_rows(patient, ward.patient.address)
    assert proxy.text == f"{SECOND_DOCTOR_NAME} became a proxy (parent: grant)"
    assert record.text == f"A new record (Condition) written by {DOCTOR_NAME}"
    assert record.link == f"/records/{record_id.hex()}" and not record.alarm
    assert proxy.height > record.height


def _read(ward: Ward, reader: bytes, time_ms: int, purpose: str, record: bytes = b"") -> Disclosure:
    kind = DisclosureKind.BODY if record else DisclosureKind.SEARCH
    return Disclosure(
        time_ms,
        reader,
        ward.patient.address,
        kind,
        purpose,
        ReadBasis.READER,
        record,
        1 if record else 0,
    )


def test_every_nodes_reads_newest_first_and_a_node_that_disagrees(ward: Ward) -> None:
    patient = ward.client(ward.patient)
    a = NodeDisclosures(
        NODE_A,
        "http://a",
        2,
        (
            SeenDisclosure(1, _read(ward, ward.doctor.address, T, "TREAT", b"\x01" * 16)),
            SeenDisclosure(2, _read(ward, ward.patient.address, T + 2_000, "PATRQT")),
        ),
    )
    research = _read(ward, ward.second.address, T + 1_000, "HRESCH")
    b = NodeDisclosures(NODE_B, "http://b", 1, (SeenDisclosure(1, research),), disagreement=1)
    down = NodeDisclosures(b"\xcc" * 20, "http://c", 0, (), error="http://c: refused")
    found = disclosure_rows(patient, [a, b, down])
    a_text, b_text = format_address(NODE_A), format_address(NODE_B)
    assert [(r.when, r.reader, r.what, r.purpose, r.node) for r in found.rows] == [
        ("2024-05-01 08:00:02", "you", "search", "the patient's own request", a_text),
        ("2024-05-01 08:00:01", SECOND_DOCTOR_NAME, "search", "research", b_text),
        ("2024-05-01 08:00:00", DOCTOR_NAME, "record 01010101… (version 1)", "treatment", a_text),
    ]
    assert [(n.trusted, n.text) for n in found.nodes] == [
        (True, "2 reads, checked against its commitments"),
        (False, "its log disagrees with what it committed from entry 1"),
        (False, "could not be asked: http://c: refused"),
    ]
