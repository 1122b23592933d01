"""Checking vitals ahead of their views (medchain.gateway.warm_vitals) and checking a
bundle's readings with the signatures on a pool: a warmed bundle is not checked again,
an altered one is still refused, a view during a warm-up gets what a full check gives
and checks no bundle twice, and the pooled check refuses what the one-reading-at-a-time
check refused, with the same error."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import MS_PER_DAY, VitalsEntry
from medchain.client import canonical_json
from medchain.crypto import AccountKeys, address_from_public_key, format_address
from medchain.gateway import (
    BadReading,
    CheckedBundles,
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    VitalReading,
    VitalsCorrupted,
    read_vitals,
    sign_reading,
    validate_vital,
    verify_reading,
    warm_vitals,
)
from medchain.gateway import _query as query_module
from medchain.gateway._vitals import (
    BLOOD_PRESSURE_PANEL,
    BODY_TEMPERATURE,
    FALL_CODE,
    HEART_RATE,
    LOINC,
    OXYGEN_SATURATION,
    OXYGEN_SATURATION_ARTERIAL,
    SNOMED,
)
from tests.gateway.test_query import MIDNIGHT, _two_days
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)
from tests.waiting import wait_until

T = TypeVar("T")
EVERYTHING = (MIDNIGHT - MS_PER_DAY, MIDNIGHT + MS_PER_DAY - 1)


def _never(*args: object) -> None:
    raise AssertionError("a bundle checked by the warm-up was opened or checked again")


def test_after_a_warm_up_a_view_checks_nothing_again(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, oximeter, _ = _two_days(world)
    keys, chain, patient = world.patient.keys, world.chain, world.patient.address
    entries = chain.vitals(patient, *EVERYTHING)
    part = (MIDNIGHT - 35 * 60_000, MIDNIGHT + 55 * 60_000)
    spans: list[tuple[tuple[int, int], bytes | None]] = [
        (EVERYTHING, None),
        (part, None),
        (part, oximeter.keys.address),
    ]
    fulls = [read_vitals(keys, chain, patient, *span, device) for span, device in spans]
    checked = CheckedBundles()
    assert warm_vitals(keys, chain, patient, *EVERYTHING, checked) == len(entries)
    assert (len(checked), checked.readings) == (len(entries), 60)
    assert warm_vitals(keys, chain, patient, *EVERYTHING, checked) == 0  # nothing new
    for name in ("verify_reading", "validate_vital", "open_bundle"):
        monkeypatch.setattr(query_module, name, _never)
    for ((from_ms, to_ms), device), full in zip(spans, fulls, strict=True):
        assert read_vitals(keys, chain, patient, from_ms, to_ms, device, checked=checked) == full
    assert [len(full) for full in fulls] == [60, 18, 9]


def test_a_bundle_altered_after_the_warm_up_is_refused(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _two_days(world)
    keys, chain, patient = world.patient.keys, world.chain, world.patient.address
    checked = CheckedBundles()
    entries = chain.vitals(patient, *EVERYTHING)
    assert warm_vitals(keys, chain, patient, *EVERYTHING, checked) == len(entries)
    other = chain.blobs.get(entries[0].cid)
    monkeypatch.setattr(chain.blobs, "get", lambda cid: other)  # a store answering wrong bytes
    with pytest.raises(VitalsCorrupted, match="does not match its hash on chain"):
        read_vitals(keys, chain, patient, *EVERYTHING, checked=checked)
    # a warm-up meeting the altered bytes checks nothing and keeps nothing: views refuse it
    fresh = CheckedBundles()
    assert warm_vitals(keys, chain, patient, *EVERYTHING, fresh) == 1  # the one matching
    assert len(fresh) == 1
    with pytest.raises(VitalsCorrupted, match="does not match its hash on chain"):
        read_vitals(keys, chain, patient, *EVERYTHING, checked=fresh)


class _ChainThread:
    """Chain calls of other threads, run on the thread that owns the chain (an in-process
    chain's SQLite store is used only there), as a web app's chain thread runs them."""

    def __init__(self) -> None:
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()

    def __call__(self, call: Callable[[], T]) -> T:
        done: Future[T] = Future()
        self._calls.put((call, done))
        return done.result()

    def serve_while(self, busy: Callable[[], bool]) -> None:
        while busy():
            with contextlib.suppress(queue.Empty):
                call, done = self._calls.get(timeout=0.01)
                done.set_result(call())


def test_a_view_during_the_warm_up_waits_for_the_bundle_being_checked(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _two_days(world)
    keys, chain, patient = world.patient.keys, world.chain, world.patient.address
    entries = chain.vitals(patient, *EVERYTHING)
    full = read_vitals(keys, chain, patient, *EVERYTHING)
    opened: list[tuple[str, str]] = []
    holding, release = threading.Event(), threading.Event()
    real = query_module._open_checked

    def gated(*args: Any) -> tuple[VitalReading, ...]:
        """The warm-up's first bundle is held until the view has checked the others."""
        opened.append((threading.current_thread().name, args[2].cid))
        if threading.current_thread().name == "warm-up" and not holding.is_set():
            holding.set()
            assert release.wait(60), "the view never checked the other bundles"
        return real(*args)

    monkeypatch.setattr(query_module, "_open_checked", gated)
    checked, on_chain = CheckedBundles(), _ChainThread()
    warm = threading.Thread(
        target=warm_vitals,
        args=(keys, chain, patient, *EVERYTHING, checked, on_chain),
        name="warm-up",
    )
    warm.start()
    on_chain.serve_while(lambda: not holding.is_set())

    def release_once_the_rest_is_checked() -> None:
        wait_until(lambda: len(opened) == len(entries), what="the view checking the rest")
        release.set()

    releaser = threading.Thread(target=release_once_the_rest_is_checked)
    releaser.start()
    main = threading.current_thread().name
    assert read_vitals(keys, chain, patient, *EVERYTHING, checked=checked) == full
    on_chain.serve_while(warm.is_alive)
    releaser.join()
    newest = max(entries, key=lambda e: e.time_to_ms)
    assert opened[0] == ("warm-up", newest.cid)
    assert sorted(cid for _, cid in opened) == sorted(e.cid for e in entries)  # each once
    assert {name for name, _ in opened[1:]} == {main}  # the view checked the rest itself


# -- the pooled check against the one-reading-at-a-time check it replaced --------------

_PATIENT = AccountKeys.generate().address
_BAND = SimulatedDevice(DeviceKind.HEART_RATE_BAND, format_address(_PATIENT), seed=7)
_ADDRESS = address_from_public_key(_BAND.keys.public_key)
_VALID = [_BAND.next_reading() for _ in range(12)]
_ENTRY = VitalsEntry(b"\x01" * 32, 9, b"\x02" * 32, "cid", b"\x03" * 32, 12, 0, 2**62, (_ADDRESS,))
_OLD_CODES = frozenset(
    {
        (LOINC, HEART_RATE.code),
        (LOINC, OXYGEN_SATURATION.code),
        (LOINC, OXYGEN_SATURATION_ARTERIAL.code),
        (LOINC, BODY_TEMPERATURE.code),
        (LOINC, BLOOD_PRESSURE_PANEL),
        (SNOMED, FALL_CODE),
    }
)
_MUTATIONS: list[tuple[str | int, ...]] = [
    ("status",),
    ("subject", "reference"),
    ("device", "reference"),
    ("code", "coding", 0, "code"),
    ("code", "coding", 0, "system"),
    ("valueQuantity", "value"),
    ("valueQuantity", "code"),
    ("effectiveDateTime",),
    ("category", 0, "coding", 0, "code"),
]
_VALUES = st.one_of(
    st.none(),
    st.integers(-10, 400),
    st.text(max_size=8),
    st.sampled_from(["final", "8867-4", "8310-5", "85354-9", "Patient/mc1x", "/min", "%"]),
)


def _old_check(signed: SignedReading, entry: VitalsEntry, patient: bytes) -> VitalReading:
    """The check as it was: signature, profile, then the coding parsed again."""
    reading = signed.reading
    try:
        verify_reading(signed)
        vital = validate_vital(reading.observation, reading.device)
    except BadReading as exc:
        what = f"reading {signed.reading_id.hex()}: {exc.message}"
        raise query_module._corrupted(entry, what) from None
    if vital.patient != format_address(patient):
        what = f"reading {signed.reading_id.hex()} is of another patient"
        raise query_module._corrupted(entry, what)
    codings = json.loads(reading.observation)["code"]["coding"]
    system, code = next(
        (c["system"], c["code"]) for c in codings if (c["system"], c["code"]) in _OLD_CODES
    )
    return VitalReading(
        signed.reading_id, address_from_public_key(reading.device), reading.timestamp_ms,
        reading.sequence, vital.kind, system, code, vital.values, vital.unit,
        reading.observation, entry.batch_id, entry.height,
    )  # fmt: skip


def _altered(signed: SignedReading, how: tuple[str, Any] | None) -> SignedReading:
    """`signed` with its signature broken ("forged"), or a value of its Observation
    replaced at a path (and signed again), or as it is."""
    if how is None:
        return signed
    reading = signed.reading
    if how[0] == "forged":
        return SignedReading(reading, bytes([signed.signature[0] ^ 1]) + signed.signature[1:])
    obs: Any = json.loads(reading.observation)
    target = obs
    path = _MUTATIONS[how[1][0]]
    try:
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = how[1][1]
        body = canonical_json(obs)
    except (KeyError, IndexError, TypeError, ValueError):
        return signed
    return sign_reading(_BAND.keys, reading.sequence, reading.timestamp_ms, body)


_HOW = st.one_of(
    st.none(),
    st.just(("forged", None)),
    st.tuples(st.just("mutated"), st.tuples(st.integers(0, len(_MUTATIONS) - 1), _VALUES)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_HOW, min_size=1, max_size=12), st.sampled_from([1, 3, 500]))
def test_the_pooled_check_refuses_what_the_old_one_refused_with_its_error(
    hows: list[Any], chunk: int
) -> None:
    readings = [_altered(signed, how) for signed, how in zip(_VALID, hows, strict=False)]
    try:
        old: tuple[VitalReading, ...] | str = tuple(
            _old_check(r, _ENTRY, _PATIENT) for r in readings
        )
    except VitalsCorrupted as exc:
        old = exc.message
    wanted = [(r, _ADDRESS) for r in readings]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(query_module, "_SIGNATURE_CHUNK", chunk)  # one chunk, or several
        try:
            new: tuple[VitalReading, ...] | str = query_module._checked(
                wanted, _ENTRY, format_address(_PATIENT)
            )
        except VitalsCorrupted as exc:
            new = exc.message
    assert new == old
    refusals.append(isinstance(old, str))


refusals: list[bool] = []
"""Whether each example's readings were refused: the generator is checked to make both."""


def test_the_examples_held_refusals_and_acceptances() -> None:
    test_the_pooled_check_refuses_what_the_old_one_refused_with_its_error()
    assert True in refusals and False in refusals
