"""SSE primitives: search key, keyword normalisation, per-epoch keys, labels, values."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from medchain.crypto import (
    LABEL_SIZE,
    MAX_KEYWORD_BYTES,
    SEARCH_KEY_SIZE,
    VALUE_SIZE,
    AccountKeys,
    DecryptionFailed,
    EntryKind,
    InvalidKey,
    InvalidKeyword,
    anchor_keys,
    decrypt_values,
    encrypt_value,
    entry_label,
    entry_labels,
    epoch_keys,
    keyword_id,
    make_entry,
    normalize_keyword,
    padded_count,
    parse_value,
    search_key,
)

RECORD = bytes(range(16))


@pytest.fixture
def key() -> bytes:
    return search_key(AccountKeys.generate())


def test_search_key_is_derived_from_the_account_and_needs_no_storage() -> None:
    keys = AccountKeys.generate()
    same = AccountKeys(keys.signing_seed, keys.encryption_secret)
    assert search_key(keys) == search_key(same)
    assert len(search_key(keys)) == SEARCH_KEY_SIZE
    assert search_key(keys) != search_key(AccountKeys.generate())
    assert search_key(keys) not in (keys.encryption_secret, keys.signing_seed)


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [
        ("  Type 2 DIABETES ", "type 2 diabetes"),
        ("type\t2\n diabetes", "type 2 diabetes"),
        ("Straße", "strasse"),  # case folding, not just lower()
        ("\uff28\uff42\uff21\uff11\uff43", "hba1c"),  # full-width "HbA1c" (NFKC)
        ("\ufb01brosis", "fibrosis"),  # "fi" ligature (NFKC)
        ("Cafe\u0301", "café"),  # combining accent composed
        ("44054006", "44054006"),
    ],
)
def test_keyword_normalisation(spelling: str, normal: str) -> None:
    assert normalize_keyword(spelling) == normal
    assert normalize_keyword(normal) == normal


def test_spellings_of_one_keyword_share_keys(key: bytes) -> None:
    assert epoch_keys(key, " HbA1c", 3) == epoch_keys(key, "\uff48\uff42\uff41\uff11\uff43 ", 3)
    assert keyword_id(key, "Diabetes") == keyword_id(key, "diabetes")


@pytest.mark.parametrize("bad", ["", "   ", "\u3000\t"])
def test_empty_keywords_are_refused(bad: str) -> None:
    with pytest.raises(InvalidKeyword, match="empty"):
        normalize_keyword(bad)


def test_overlong_keywords_are_refused_without_echoing_them() -> None:
    secret = "confidential-diagnosis-" * 20
    with pytest.raises(InvalidKeyword) as caught:
        normalize_keyword(secret)
    assert str(MAX_KEYWORD_BYTES) in caught.value.message
    assert "confidential" not in caught.value.message


def test_keys_are_independent_across_keywords_epochs_and_accounts(key: bytes) -> None:
    other = search_key(AccountKeys.generate())
    keys = {
        epoch_keys(key, "asthma", 0),
        epoch_keys(key, "asthma", 1),
        epoch_keys(key, "copd", 0),
        epoch_keys(other, "asthma", 0),
    }
    material = [k.label_key for k in keys] + [k.value_key for k in keys]
    assert len(set(material)) == 8
    assert anchor_keys(key).label_key not in material
    assert keyword_id(key, "asthma") not in material


def test_epoch_keys_never_show_in_repr(key: bytes) -> None:
    keys = epoch_keys(key, "asthma", 0)
    assert keys.label_key.hex() not in repr(keys) and keys.value_key.hex() not in repr(keys)


def test_bad_search_keys_are_named() -> None:
    with pytest.raises(InvalidKey, match="search key"):
        epoch_keys(b"short", "asthma", 0)


def test_labels_are_pseudorandom_per_counter(key: bytes) -> None:
    label_key = epoch_keys(key, "asthma", 0).label_key
    labels = [entry_label(label_key, i) for i in range(100)]
    assert len(set(labels)) == 100 and all(len(x) == LABEL_SIZE for x in labels)
    assert labels[5] == entry_label(label_key, 5)
    assert entry_label(epoch_keys(key, "asthma", 1).label_key, 5) != labels[5]


def test_labels_are_two_aes_blocks_of_the_counter(key: bytes) -> None:
    label_key = epoch_keys(key, "asthma", 0).label_key
    aes = Cipher(algorithms.AES(label_key), modes.ECB()).encryptor()
    for counter in (0, 1, 7, 1_000, 2**40):
        blocks = (2 * counter).to_bytes(16, "big") + (2 * counter + 1).to_bytes(16, "big")
        assert entry_label(label_key, counter) == aes.update(blocks)


def test_walking_labels_gives_each_counters_label(key: bytes) -> None:
    label_key = epoch_keys(key, "asthma", 0).label_key
    walked = list(itertools.islice(entry_labels(label_key), 5_000))  # several batches
    assert walked[::499] == [entry_label(label_key, i) for i in range(0, 5_000, 499)]
    assert list(itertools.islice(entry_labels(label_key, 37), 3)) == walked[37:40]
    with pytest.raises(InvalidKey, match="label key"):
        next(entry_labels(b"short"))


def test_values_have_one_size_whatever_they_hold(key: bytes) -> None:
    value_key = epoch_keys(key, "asthma", 0).value_key
    sizes = {len(encrypt_value(value_key, 0, kind, RECORD)) for kind in EntryKind}
    assert sizes == {VALUE_SIZE}
    assert encrypt_value(value_key, 0, EntryKind.ADD, RECORD) != encrypt_value(
        value_key, 0, EntryKind.ADD, RECORD
    )  # random nonce: equal entries do not look equal


def test_values_open_in_order_with_their_kind(key: bytes) -> None:
    keys = epoch_keys(key, "asthma", 2)
    kinds = [EntryKind.ADD, EntryKind.DUMMY, EntryKind.TOMBSTONE]
    values = [make_entry(keys, i, k, RECORD)[1] for i, k in enumerate(kinds)]
    opened = decrypt_values(keys.value_key, values)
    assert [parse_value(p) for p in opened] == [(k, RECORD) for k in kinds]
    with pytest.raises(DecryptionFailed):
        parse_value(bytes([7]) + RECORD)


def test_values_out_of_order_or_under_another_key_do_not_open(key: bytes) -> None:
    keys = epoch_keys(key, "asthma", 0)
    values = [encrypt_value(keys.value_key, i, EntryKind.ADD, RECORD) for i in range(3)]
    with pytest.raises(DecryptionFailed, match="out of order"):
        list(decrypt_values(keys.value_key, [values[1], values[0], values[2]]))
    with pytest.raises(DecryptionFailed):
        list(decrypt_values(keys.value_key, values[1:]))  # a skipped entry shifts the rest
    with pytest.raises(DecryptionFailed):
        list(decrypt_values(epoch_keys(key, "asthma", 1).value_key, values))
    tampered = bytearray(values[0])
    tampered[20] ^= 1
    with pytest.raises(DecryptionFailed):
        list(decrypt_values(keys.value_key, [bytes(tampered)]))
    with pytest.raises(DecryptionFailed):
        list(decrypt_values(keys.value_key, [values[0][:-1]]))


@pytest.mark.parametrize(
    ("count", "bucket"), [(0, 1), (1, 1), (2, 2), (3, 4), (5, 8), (7, 8), (8, 8), (9, 16)]
)
def test_padded_count(count: int, bucket: int) -> None:
    assert padded_count(count) == bucket


@given(st.integers(min_value=1, max_value=10**9))
def test_padding_at_most_doubles(count: int) -> None:
    bucket = padded_count(count)
    assert count <= bucket < 2 * count or bucket == count == 1
    assert bucket & (bucket - 1) == 0
