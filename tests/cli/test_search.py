"""`medchain record search | index | unindex | search-grant` and `record put --keyword`,
driven as a user would."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.consortium import EXAMPLES, Cli, cli, clinician, patient

__all__ = ["cli"]


def _ids(output: str) -> list[str]:
    return [line for line in output.split() if len(line) == 32]


def test_search_story(cli: Cli, tmp_path: Path) -> None:
    alice, alice_addr = patient(cli, "alice")
    bob, _ = clinician(cli, "bob")
    carol, carol_addr = clinician(cli, "carol")
    condition = str(EXAMPLES / "condition.json")
    heart = str(EXAMPLES / "observation-heart-rate.json")

    put = ("record", "put", "--key", bob, "--patient", alice_addr, "--file")
    (r1,) = _ids(cli(*put, condition, "--keyword", "Type 2 Diabetes", "--keyword", "HbA1c"))
    (r2,) = _ids(cli(*put, heart, "--keyword", "heart rate", "--keyword", "hba1c"))
    assert Path(bob + ".search").exists()

    search = ("record", "search", "--key")
    assert _ids(cli(*search, bob, "--keyword", "type 2  DIABETES")) == [r1]
    assert _ids(cli(*search, bob, "--keyword", "hba1c")) == [r1, r2]
    assert _ids(cli(*search, bob, "--keyword", "asthma")) == []
    decrypted = cli(*search, bob, "--keyword", "heart rate", "--decrypt")
    assert json.loads(decrypted)[0]["resource"]["resourceType"] == "Observation"

    # the patient indexes her records under her own key, padded
    cli("record", "index", "--key", alice, r1, r2, "--keyword", "mine", "--pad")
    assert _ids(cli(*search, alice, "--keyword", "MINE")) == [r1, r2]
    assert _ids(cli(*search, alice, "--keyword", "hba1c")) == []  # bob's index, not hers
    cli("record", "unindex", "--key", alice, r1, "--keyword", "mine")
    assert _ids(cli(*search, alice, "--keyword", "mine")) == [r2]

    # a scoped capability for carol
    cap = tmp_path / "carol.cap"
    grant = ("record", "search-grant", "--key", bob, "--reader", carol_addr)
    out = cli(*grant, "--keyword", "hba1c", "--out", str(cap))
    assert carol_addr in out and cap.exists()
    with_cap = (*search, carol, "--capability", str(cap))
    assert _ids(cli(*with_cap, "--keyword", "HbA1c")) == [r1, r2]
    refused = cli(*with_cap, "--keyword", "heart rate", ok=False)
    assert "does not cover" in refused
    # carol may open neither record: both are listed as skipped, with the reason
    skipped = cli(*with_cap, "--keyword", "hba1c", "--decrypt")
    assert skipped.count("skipped") == 2 and "ask the patient to grant access" in skipped
    # bob's own index cannot be searched without the capability
    assert "search-grant" in cli(
        *search, carol, "--keyword", "hba1c", "--owner", alice_addr, ok=False
    )
    # the capability is bob's, not alice's
    assert "another account" in cli(
        *with_cap, "--keyword", "hba1c", "--owner", alice_addr, ok=False
    )
    # and nobody else can use it
    assert "granted to" in cli(
        *search, alice, "--capability", str(cap), "--keyword", "hba1c", ok=False
    )
    assert "already exists" in cli(*grant, "--keyword", "x", "--out", str(cap), ok=False)


def test_keywords_stay_off_the_data_directory(cli: Cli) -> None:
    alice, alice_addr = patient(cli, "alice")
    bob, _ = clinician(cli, "bob")
    cli(
        "record",
        "put",
        "--key",
        bob,
        "--patient",
        alice_addr,
        "--file",
        str(EXAMPLES / "condition.json"),
        "--keyword",
        "hypertension-xyzzy",
    )
    assert len(_ids(cli("record", "search", "--key", bob, "--keyword", "hypertension-xyzzy"))) == 1
    for path in [*cli.data.rglob("*"), Path(bob + ".search"), Path(alice)]:
        if path.is_file():
            assert b"xyzzy" not in path.read_bytes().lower(), path


def test_bad_input_is_one_line(cli: Cli) -> None:
    bob, _ = clinician(cli, "bob")
    assert "invalid_keyword" in cli("record", "search", "--key", bob, "--keyword", "  ", ok=False)
    missing = cli(
        "record", "search", "--key", bob, "--keyword", "x", "--capability", "nope", ok=False
    )
    assert "cannot read nope" in missing
    assert "not a record id" in cli(
        "record", "index", "--key", bob, "beef", "--keyword", "x", ok=False
    )
