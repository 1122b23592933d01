"""Loading the Ethereum client leaves Python's recursion limit alone, so a node that
anchors still refuses deeply nested input instead of overflowing the C stack. Run in
a fresh interpreter: this test process may have raised the limit already (py-evm,
under eth-tester, does), and a regression must fail the test, not kill the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = textwrap.dedent(
    """
    import sys

    default = sys.getrecursionlimit()
    from medchain.anchor import AnchorContract, load_eth_key  # web3 and eth-account
    print("limit", default, sys.getrecursionlimit())

    # what a stranger can send a node that anchors: 100,000 nested arrays, 200 KB
    from tests.api.harness import FakeNode, api_client, make_chain

    api = api_client(FakeNode(make_chain()))
    body = b'{"heights": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = api.post(
        "/v1/chain/hashes", content=body, headers={"content-type": "application/json"}
    )
    print("answer", response.status_code, response.json()["error"]["code"])
    """
)


def test_the_ethereum_client_keeps_the_recursion_limit_and_deep_json_is_400() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr[-3_000:])
    limit, answer = run.stdout.splitlines()
    _, default, after = limit.split()
    assert after == default, f"the recursion limit went from {default} to {after}"
    assert answer == "answer 400 malformed_json"
