"""Every failure has one JSON shape and the status a client can act on; bad input,
however odd, never reaches the 500 that only a bug may give."""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.api._errors import status_for
from medchain.app import (
    InvalidArgument,
    KeyImageReused,
    MalformedTx,
    NonceReused,
    RecordErased,
    TxTooLarge,
    UnknownScope,
)
from medchain.crypto import AccountKeys
from medchain.node import NodeStatus, PendingFull
from medchain.offchain import (
    BlobCorrupted,
    BlobNotFound,
    BlobTooLarge,
    IpfsError,
    IpfsUnavailable,
    cid_for,
)
from medchain.store import disk_full
from medchain.types import MedchainError, Receipt, TxFailed
from tests.api.harness import (
    FakeNode,
    api_client,
    make_chain,
    read_as,
    registered_gateway,
    upload_headers,
)
from tests.hostile import DEEP, hostile
from tests.types.test_codec import txs


class _Full(MedchainError):
    code = "mempool_full"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PendingFull("full"), 503),
        (_Full("full"), 503),
        (NonceReused("used"), 409),
        (KeyImageReused("used"), 409),
        (TxTooLarge("big"), 413),
        (BlobTooLarge("big"), 413),
        (BlobNotFound("gone"), 404),
        (UnknownScope("gone"), 400),
        (MalformedTx("bad"), 400),
        (InvalidArgument("bad"), 400),
        (MedchainError("bad"), 400),
        (BlobCorrupted("damaged"), 500),
        (IpfsUnavailable("down"), 503),
        (IpfsError("odd answer"), 502),
        (disk_full(Path("/srv/node/blobs"), "the bodies"), 507),
        (RecordErased("erased by its patient"), 410),
    ],
)
def test_status_of_domain_errors(error: MedchainError, status: int) -> None:
    assert status_for(error) == status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("not_credentialed", 403),
        ("not_an_admin", 403),
        ("not_a_proxy", 403),
        ("not_owner", 403),
        ("not_authorised", 403),
        ("wrong_role", 403),
        ("invalid_argument", 422),
        ("already_registered", 409),
        ("proposal_error", 409),
        ("unknown_record", 409),
        ("record_erased", 410),
    ],
)
def test_status_of_a_call_refused_at_admission(code: str, status: int) -> None:
    assert status_for(TxFailed(Receipt(b"\x01" * 32, False, code, "refused"))) == status


class _BrokenNode(FakeNode):
    def status(self) -> NodeStatus:
        raise RuntimeError("a bug in the node")


def test_a_bug_is_a_logged_500_with_a_json_body(caplog: pytest.LogCaptureFixture) -> None:
    api = api_client(_BrokenNode(make_chain()))
    with caplog.at_level(logging.ERROR, logger="medchain.api"):
        response = api.get("/v1/status")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "a bug in the node" not in error["message"]
    reference = error["message"].split("logged as ")[1].split(")")[0]
    assert reference in caplog.text and "RuntimeError: a bug in the node" in caplog.text
    metrics = api.get("/metrics").text
    assert 'route="/v1/status",status="500"' in metrics


def test_validation_errors_are_reshaped() -> None:
    api = api_client(FakeNode(make_chain()))
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            400,
            "malformed_json",
        ),
        ({"content": b'{"tx": "00"}'}, 400, "malformed_json"),  # no JSON content type
        (
            {"content": b"tx=00", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            400,
            "malformed_json",
        ),
        ({"json": ["not", "an", "object"]}, 422, "invalid_request"),
        ({"json": {"tx": 7}}, 422, "invalid_request"),
    ]
    for kwargs, status, code in cases:
        response = api.post("/v1/txs", **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert response.json()["error"]["code"] == code
    message = api.post("/v1/txs", json={"tx": 7}).json()["error"]["message"]
    assert "body.tx" in message and "/docs" in message


def test_a_number_out_of_its_bounds_is_400_out_of_range() -> None:
    """Each integer the API takes is declared with the bounds of the layer below it; a
    value outside them says which bound, whatever the number's size."""
    api = api_client(FakeNode(make_chain()))
    cases = [
        ("/v1/blocks/-1", "path.height must be at least 0, got -1"),
        (f"/v1/blocks/{2**63}", f"path.height must be at most {2**63 - 1}, got {2**63}"),
        (f"/v1/blocks/{'9' * 5_000}", "path.height has more digits than any value it takes"),
        ("/v1/roles/patient/-1", "path.index must be at least 0"),
        ("/v1/records/" + "ab" * 16 + "/versions/0", "path.number must be at least 1, got 0"),
    ]
    for path, expected in cases:
        response = api.get(path, auth=read_as(AccountKeys.generate()))
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert error["code"] == "out_of_range" and error["message"].startswith(expected), error
        assert error["message"].endswith("; the API is described at /docs")
        assert len(error["message"]) < 200  # a 5,000-digit input is not echoed back
    response = api.post("/v1/txs?timeout_s=0", json={"tx": "c0"})
    assert response.json()["error"]["message"].startswith("query.timeout_s must be more than 0")


def test_a_number_out_of_bounds_among_other_mistakes_is_the_general_422() -> None:
    api = api_client(FakeNode(make_chain()))
    response = api.post("/v1/txs?timeout_s=61", json={"tx": 7})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "query.timeout_s" in error["message"] and "body.tx" in error["message"]


def test_a_body_json_cannot_read_is_400_malformed_json() -> None:
    """Python's JSON parser refuses numbers of over 4,300 digits and invalid UTF-8 with
    errors FastAPI answers as a bare 'error parsing the body'."""
    api = api_client(FakeNode(make_chain()))
    bodies = [b'{"heights": [1' + b"0" * 5_000 + b"]}", b'{"heights": "\xff\xfe"}']
    for body in bodies:
        response = api.post(
            "/v1/chain/hashes", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (body[:40], response.text)
        error = response.json()["error"]
        assert error["code"] == "malformed_json" and "send a JSON object" in error["message"]


# -- fuzz: random methods, paths and bodies never give a 500 ----------------------------


@cache
def _fuzz_node() -> tuple[FakeNode, AccountKeys]:
    """A node, and a gateway registered on its chain (to sign bulk uploads)."""
    chain = make_chain()
    gateway = registered_gateway(chain)
    return FakeNode(chain, auto_commit=False), gateway


@cache
def _fuzz_api() -> httpx.Client:
    node, _ = _fuzz_node()
    return api_client(node, max_body_bytes=4_096, max_blob_bytes=4_096)


_ADDRESS = AccountKeys.generate().address_text
_TEMPLATES = [
    "/v1/txs",
    "/v1/txs/batch",
    "/v1/txs/{}",
    "/v1/blocks/{}",
    "/v1/blocks/latest",
    "/v1/genesis",
    "/v1/accounts/{}",
    "/v1/identities/{}",
    "/v1/records/{}",
    "/v1/records/{}/versions/{}",
    "/v1/records/{}/audit",
    "/v1/patients/{}/records",
    "/v1/search",
    "/v1/research/{}",
    "/v1/anon/{}",
    "/v1/anon/{}/entries",
    "/v1/roles/{}",
    "/v1/roles/{}/{}",
    "/v1/stakes/{}",
    "/v1/candidates",
    "/v1/validators",
    "/v1/blobs",
    "/v1/blobs/{}",
    "/v1/status",
    "/health",
    "/metrics",
    "/{}",
]
_segments = st.one_of(
    st.text(max_size=80),
    st.text("0123456789abcdefABCDEFx", max_size=70),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(
        [_ADDRESS, _ADDRESS.upper(), "patient", "latest", "ab" * 16, "ab" * 32, cid_for(b"x")]
    ),
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_objects = st.fixed_dictionaries(
    {},
    optional={
        "tx": st.one_of(st.text(max_size=60), _json),
        "txs": st.one_of(st.lists(st.text(max_size=40), max_size=5), _json),
        "owner": st.one_of(st.just(_ADDRESS), st.text(max_size=50)),
        "token": st.one_of(st.text("0123456789abcdef", max_size=80), _json),
    },
)
_bodies = st.one_of(
    st.none(),
    st.binary(max_size=300).map(lambda b: (b, "application/octet-stream")),
    _json.map(lambda j: (json.dumps(j).encode(), "application/json")),
    _objects.map(lambda o: (json.dumps(o).encode(), "application/json")),
    st.binary(max_size=300).map(lambda b: (b, "application/json")),
    st.binary(min_size=4_097, max_size=5_000).map(lambda b: (b, "application/json")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    template=st.sampled_from(_TEMPLATES),
    segments=st.lists(_segments, min_size=2, max_size=2),
    encode_slashes=st.booleans(),
    query=st.dictionaries(
        st.sampled_from(["wait", "timeout_s", "x"]), st.text(max_size=10), max_size=2
    ),
    body=_bodies,
)
def test_no_input_gives_a_500(
    method: str,
    template: str,
    segments: list[str],
    encode_slashes: bool,
    query: dict[str, str],
    body: tuple[bytes, str] | None,
) -> None:
    safe = "" if encode_slashes else "/"
    path = template.format(*(quote(s, safe=safe) for s in segments[: template.count("{}")]))
    content, headers = (None, {}) if body is None else (body[0], {"content-type": body[1]})
    response = _fuzz_api().request(method, path, params=query, content=content, headers=headers)
    assert response.status_code < 500, (method, path, response.text)
    if response.status_code >= 400 and method != "HEAD":
        error = response.json()["error"]
        assert error["code"] and error["message"]


# -- bytes that decode: hostile encodings are a 400 malformed_*, never a 500 ------------

_OWNER = AccountKeys.generate().address_text


def _decoding_requests(
    data: bytes, gateway: AccountKeys, chain_id: str
) -> dict[str, dict[str, Any]]:
    """The same bytes to every route that decodes bytes a client sent (a bulk upload
    signed by `gateway`, so that its body is decoded)."""
    return {
        "/v1/txs": {"json": {"tx": data.hex()}},
        "/v1/txs/batch": {"json": {"txs": [data.hex()]}},
        "/v1/records": {"json": {"tx": data.hex(), "ciphertext": "00"}},
        "/v1/search": {
            "json": {"owner": _OWNER, "token": data.hex()},
            "auth": read_as(AccountKeys.generate(), chain_id=chain_id),
        },
        "/v1/blobs/batch": {"content": data, "headers": upload_headers(gateway, chain_id, data)},
    }


def _error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def test_deeply_nested_lists_are_a_400_malformed_on_every_decoding_route() -> None:
    chain = make_chain()
    gateway = registered_gateway(chain)
    api = api_client(FakeNode(chain, auto_commit=False))
    for path, kwargs in _decoding_requests(DEEP, gateway, chain.chain_id).items():
        response = api.post(path, **kwargs)
        if path == "/v1/txs/batch":  # refused per transaction inside a 200
            assert response.status_code == 200, response.text
            (result,) = response.json()["results"]
            assert result["error"]["code"].startswith("malformed"), result
            continue
        assert response.status_code == 400, (path, response.text)
        assert _error_code(response).startswith("malformed"), (path, response.text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hostile_encodings_on_every_decoding_route_are_refused_with_a_4xx(
    data: st.DataObject,
) -> None:
    raw = data.draw(hostile(txs.map(lambda tx: tx.encoded)))
    node, gateway = _fuzz_node()
    for path, kwargs in _decoding_requests(raw, gateway, node.genesis.chain_id).items():
        response = _fuzz_api().post(path, **kwargs)
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:
            assert _error_code(response), (path, response.text)
