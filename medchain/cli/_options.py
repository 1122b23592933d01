"""The options and arguments many commands share, said once: where the chain is (a node
or a local chain), whose key signs, addresses, counts and limits."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from medchain.app import PurposeOfUse
from medchain.client import DEFAULT_NODE_URL

DEFAULT_NODE = DEFAULT_NODE_URL
DEFAULT_DATA = Path(os.environ.get("MEDCHAIN_DATA", "medchain-data"))
"""Where `medchain init` creates a local chain."""
MAX_INT = 2**63 - 1
"""The largest amount, count, height or time any option takes: the largest integer the
stores below keep (SQLite's INTEGER)."""
MAX_COUNT = 100_000_000
"""More of anything than a benchmark on one machine gets through."""
MAX_NODES = 1_000
"""More validators than any network medchain is meant for, and still a run that ends."""
MAX_VALIDATORS = 100
"""Validator processes on one machine."""
MAX_MS = 3_600_000
"""An hour: longer than any latency, pause or timeout worth simulating."""
MAX_SECONDS = 86_400.0
MAX_DAYS = 36_500
"""A century: the longest a credential or a proxy is given for."""


def key_option(help: str) -> Any:
    """`--key`: a key file, described for the command's signer."""
    return typer.Option("--key", help=help, dir_okay=False)


def address_argument(help: str) -> Any:
    return typer.Argument(help=help, show_default=False)


def count(help: str, low: float = 1, high: float = MAX_COUNT) -> Any:
    """A whole number from `low` to `high`."""
    return typer.Option(min=low, max=high, help=help)


DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Work on the in-process local chain in this directory instead of a node "
        "(env MEDCHAIN_DATA); created on first use.",
        envvar="MEDCHAIN_DATA",
        show_default=False,
        file_okay=False,
    ),
]
NodeOption = Annotated[
    str,
    typer.Option(
        "--node",
        help="URL of the node's HTTP API (env MEDCHAIN_NODE); used unless --data is given.",
        envvar="MEDCHAIN_NODE",
    ),
]
InitDataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Data directory of the new local chain (env MEDCHAIN_DATA).",
        envvar="MEDCHAIN_DATA",
        file_okay=False,
    ),
]
KeyOption = Annotated[Path, key_option("Your key file (from `medchain keys new`).")]
PatientKeyOption = Annotated[Path, key_option("The patient's key file.")]
SignerKeyOption = Annotated[
    Path, key_option("Your key file: the patient's, a guardian's or a hospital's.")
]
ReaderKeyOption = Annotated[
    Path | None,
    key_option("Your key file, to open labels sealed for you (the patient's or a guardian's)."),
]
PatientOption = Annotated[str, typer.Option(help="Patient address.")]
ReadPurposeOption = Annotated[
    PurposeOfUse | None,
    typer.Option(
        "--purpose",
        help="Why you read (HL7 PurposeOfUse code), told to the node, which logs it with "
        "the read and serves it only if your grant allows it; default PATRQT for your own "
        "data, HRESCH for research copies, TREAT otherwise.",
        case_sensitive=False,
        show_default=False,
    ),
]
AddressArg = Annotated[str, address_argument("Address (mc1...).")]
FhirFileOption = Annotated[
    Path, typer.Option("--file", help="FHIR R4 resource (JSON).", dir_okay=False)
]
KeywordsOption = Annotated[
    list[str],
    typer.Option("--keyword", help="A keyword (repeatable); case and spacing do not matter."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JsonTablesOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ConsensusOption = Annotated[str, typer.Option(help="pbft, afbft or dpos.")]
ValidatorsOption = Annotated[int, count("Validator processes.", high=MAX_VALIDATORS)]
BlockIntervalOption = Annotated[int, count("Pause between blocks.", low=0, high=MAX_MS)]
