from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.crypto import (
    MerkleProof,
    cached_merkle_root,
    inclusion_proof,
    inclusion_proofs,
    merkle_root,
    verify_inclusion,
)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return h(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return h(b"\x01" + left + right)


# The RFC 6962 definitions, written recursively exactly as in section 2.1, as an oracle.
def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return h(b"")
    if len(d) == 1:
        return leaf(d[0])
    k = split(len(d))
    return node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


# Test data from the Certificate Transparency reference implementation (also in
# transparency-dev/merkle testonly): leaves, and the roots of their first n leaves.
CT_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (index, tree size, audit path) from the same test suites.
CT_PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

unique_leaves = st.lists(st.binary(max_size=40), min_size=1, max_size=70, unique=True)


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").digest()


def test_single_leaf_root_is_prefixed_leaf_hash() -> None:
    assert merkle_root([b"record"]) == h(b"\x00record")


def test_three_leaves_carry_the_odd_one_up_instead_of_duplicating_it() -> None:
    a, b, c = b"a", b"b", b"c"
    expected = node(node(leaf(a), leaf(b)), leaf(c))
    assert merkle_root([a, b, c]) == expected
    # Bitcoin-style duplication of the last leaf would make [a, b, c] and [a, b, c, c] collide.
    assert merkle_root([a, b, c, c]) != expected


def test_five_leaves_split_at_largest_power_of_two_below_n() -> None:
    d = [bytes([i]) for i in range(5)]
    left = node(node(leaf(d[0]), leaf(d[1])), node(leaf(d[2]), leaf(d[3])))
    assert merkle_root(d) == node(left, leaf(d[4]))


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_certificate_transparency_roots(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_PROOFS)
def test_certificate_transparency_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    leaves = CT_LEAVES[:size]
    proof = inclusion_proof(leaves, index)
    assert proof == MerkleProof(index, size, tuple(bytes.fromhex(p) for p in path))
    assert verify_inclusion(bytes.fromhex(CT_ROOTS[size]), leaves[index], proof)


def test_inner_node_cannot_pass_for_a_leaf() -> None:
    # Second preimage: present the children of an inner node as one leaf of a smaller tree.
    leaves = [b"a", b"b", b"c", b"d"]
    root = merkle_root(leaves)
    forged_leaf = leaf(b"a") + leaf(b"b")
    forged = MerkleProof(index=0, tree_size=2, path=(node(leaf(b"c"), leaf(b"d")),))
    assert not verify_inclusion(root, forged_leaf, forged)


def test_inclusion_proof_rejects_index_outside_tree() -> None:
    with pytest.raises(IndexError, match="outside a tree of 3 leaves"):
        inclusion_proof([b"a", b"b", b"c"], 3)
    with pytest.raises(IndexError):
        inclusion_proof([b"a"], -1)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


@given(st.lists(st.binary(max_size=40), max_size=100))
def test_root_matches_rfc_definition(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == ref_mth(leaves)


@given(st.lists(st.lists(st.binary(max_size=8), max_size=12), min_size=1, max_size=40))
def test_a_remembered_root_is_the_root_of_exactly_those_leaves(lists: list[list[bytes]]) -> None:
    # more lists than the cache keeps, with repeats and near-misses among them
    for leaves in lists + lists[::-1]:
        assert cached_merkle_root(tuple(leaves)) == ref_mth(leaves)


@settings(max_examples=50)
@given(unique_leaves)
def test_every_leaf_proof_matches_rfc_and_verifies(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    for index, data in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert list(proof.path) == ref_path(index, leaves)
        assert proof.tree_size == len(leaves)
        assert verify_inclusion(root, data, proof)


@settings(max_examples=50)
@given(st.lists(st.binary(max_size=8), max_size=70))
def test_all_proofs_at_once_are_the_single_proofs(leaves: list[bytes]) -> None:
    assert inclusion_proofs(leaves) == [inclusion_proof(leaves, i) for i in range(len(leaves))]


@given(unique_leaves, st.data())
def test_tampered_proofs_fail(leaves: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = inclusion_proof(leaves, index)

    other = data.draw(st.binary(max_size=40).filter(lambda b: b != leaves[index]))
    assert not verify_inclusion(root, other, proof)

    if len(leaves) > 1:
        moved = data.draw(st.integers(0, len(leaves) - 1).filter(lambda i: i != index))
        assert not verify_inclusion(root, leaves[index], replace(proof, index=moved))

    bit = data.draw(st.integers(0, 255))
    bad_root = bytearray(root)
    bad_root[bit // 8] ^= 1 << (bit % 8)
    assert not verify_inclusion(bytes(bad_root), leaves[index], proof)

    if proof.path:
        assert not verify_inclusion(root, leaves[index], replace(proof, path=proof.path[:-1]))
        flipped = bytearray(proof.path[0])
        flipped[0] ^= 1
        bad_path = (bytes(flipped), *proof.path[1:])
        assert not verify_inclusion(root, leaves[index], replace(proof, path=bad_path))
    extended = (*proof.path, root)
    assert not verify_inclusion(root, leaves[index], replace(proof, path=extended))


def test_proof_outside_its_tree_size_fails() -> None:
    leaves = [b"a", b"b", b"c", b"d"]
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, 3)
    assert not verify_inclusion(root, b"d", replace(proof, tree_size=3))
    assert not verify_inclusion(root, b"d", replace(proof, tree_size=0))
    assert not verify_inclusion(root, b"d", replace(proof, index=-1))


@given(
    root=st.one_of(st.binary(), st.none(), st.integers()),
    data=st.one_of(st.binary(), st.text(), st.none()),
    index=st.one_of(st.integers(), st.none(), st.floats()),
    size=st.one_of(st.integers(), st.none(), st.text()),
    path=st.one_of(
        st.tuples(st.binary(), st.binary()),
        st.lists(st.binary(min_size=32, max_size=32)).map(tuple),
        st.lists(st.integers()).map(tuple),
        st.none(),
        st.text(),
    ),
)
def test_verify_never_raises_on_garbage(
    root: object, data: object, index: object, size: object, path: object
) -> None:
    proof = MerkleProof(index, size, path)  # type: ignore[arg-type]
    assert verify_inclusion(root, data, proof) is False  # type: ignore[arg-type]


def test_verify_rejects_objects_that_are_not_proofs() -> None:
    assert verify_inclusion(merkle_root([b"a"]), b"a", object()) is False  # type: ignore[arg-type]
    assert verify_inclusion(merkle_root([b"a"]), b"a", MerkleProof(0, 1, ())) is True


def test_large_tree_proofs_verify() -> None:
    leaves = [i.to_bytes(32, "big") for i in range(5000)]
    root = merkle_root(leaves)
    assert root == ref_mth(leaves)
    for index in (0, 1, 2047, 4095, 4096, 4998, 4999):
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(root, leaves[index], proof)
        assert not verify_inclusion(root, leaves[index - 1], proof)
