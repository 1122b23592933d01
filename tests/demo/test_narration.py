"""Story: numbered sections and checked claims, told on the console it is given."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from medchain.client import NodeError
from medchain.demo import Story
from medchain.types import MedchainError


def _story() -> tuple[Story, io.StringIO]:
    out = io.StringIO()
    return Story(Console(file=out, width=150), lambda entries, names: ""), out


def test_sections_and_claims_are_told_on_the_given_console() -> None:
    story, out = _story()
    story.section("First")
    story.section("Second")
    story.check("a claim that holds", True)
    story.note("something not checked")
    told = out.getvalue()
    assert "1. First" in told and "2. Second" in told
    assert "✓ a claim that holds" in told and "! something not checked" in told


def test_a_failed_claim_stops_the_story() -> None:
    story, out = _story()
    with pytest.raises(MedchainError, match="demo check failed: it is false"):
        story.check("it is false", False)
    assert "it is false" not in out.getvalue()


def test_refusals_are_checked_with_their_code_and_status() -> None:
    story, out = _story()

    def refuse() -> None:
        raise NodeError("nonce_reused", "the nonce was used", 409)

    error = story.refused("a replay", refuse, code="nonce_reused", status=409)
    assert isinstance(error, NodeError)
    assert "→ HTTP 409 nonce_reused: the nonce was used" in out.getvalue()
    with pytest.raises(MedchainError, match="refused with nonce_reused, not nonce_gap"):
        story.refused("a gap", refuse, code="nonce_gap")
    with pytest.raises(MedchainError, match=r"HTTP 409 nonce_reused, not 400"):
        story.refused("a bad one", refuse, status=400)
    with pytest.raises(MedchainError, match="it was allowed"):
        story.refused("an allowed action", lambda: None)
