"""The verification-chain routes: GET /v1/anchoring on a node that does not anchor, and
POST /v1/chain/hashes, whose heights are bounded to what the chain store holds."""

from __future__ import annotations

from medchain.api._anchoring import MAX_HEIGHTS
from medchain.store import MAX_HEIGHT
from medchain.types import block_hash
from tests.api.conftest import World


def test_anchoring_of_a_node_that_does_not_anchor(world: World) -> None:
    response = world.api.get("/v1/anchoring")
    assert response.status_code == 200 and response.json()["configured"] is False


def test_block_ids_at_the_heights_asked_for(world: World) -> None:
    latest = world.chain.height
    asked = [latest, 0, latest, latest + 1, MAX_HEIGHT]  # a repeat, two not held
    response = world.api.post("/v1/chain/hashes", json={"heights": asked})
    assert response.status_code == 200, response.text
    expected = {}
    for height in (0, latest):
        block = world.chain.block_at(height)
        assert block is not None
        expected[str(height)] = {
            "hash": block_hash(block.header).hex(),
            "state_root": block.header.state_root.hex(),
        }
    assert response.json() == {"blocks": expected}


def test_a_height_the_store_cannot_hold_is_400_not_500(world: World) -> None:
    """Found by the schema fuzz run: 2^63 reached SQLite and raised OverflowError."""
    for height in (MAX_HEIGHT + 1, 2**64, 10**30, -1, -(2**64)):
        response = world.api.post("/v1/chain/hashes", json={"heights": [1, height]})
        assert response.status_code == 400, (height, response.text)
        error = response.json()["error"]
        assert error["code"] == "out_of_range", error
        assert "body.heights.1" in error["message"] and "/docs" in error["message"]
    over = world.api.post("/v1/chain/hashes", json={"heights": [2**64]}).json()["error"]
    assert over["message"].startswith(f"body.heights.0 must be at most {MAX_HEIGHT}, got {2**64};")
    under = world.api.post("/v1/chain/hashes", json={"heights": [-1]}).json()["error"]
    assert under["message"].startswith("body.heights.0 must be at least 0, got -1;")


def test_too_many_heights_are_refused(world: World) -> None:
    response = world.api.post("/v1/chain/hashes", json={"heights": [0] * (MAX_HEIGHTS + 1)})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
