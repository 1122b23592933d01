"""The per-run bearer token and its check."""

from __future__ import annotations

from medchain.fhir._token import bearer_matches, new_token


def test_tokens_differ_per_run() -> None:
    assert new_token() != new_token()
    assert len(new_token()) >= 40


def test_only_the_bearer_scheme_with_the_token_matches() -> None:
    token = new_token()
    assert bearer_matches(f"Bearer {token}", token)
    assert bearer_matches(f"bearer  {token} ", token)
    assert not bearer_matches(None, token)
    assert not bearer_matches("", token)
    assert not bearer_matches(f"Basic {token}", token)
    assert not bearer_matches(f"Bearer {token}x", token)
    assert not bearer_matches("Bearer ", token)
