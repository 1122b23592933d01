"""Disclosure heads: each node commits the head of its disclosure log now and then,
so that it cannot later rewrite, drop or reorder the reads it logged up to that head
without its log disagreeing with the chain.

A validator's account commits (the node signs with its own key), and so does an
active registered edge gateway's, for the log of the reading statuses it serves (a
revoked one no longer may); a committer's `seq` (the number of entries the head
covers) strictly increases. Each node's commits are a
counted list, with its latest apart, and the nodes that ever committed are a counted
list too: where a patient's client finds every node's `api_url` to ask.
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._devices import _require_gateway, get_gateway
from medchain.app._errors import InvalidArgument
from medchain.app._indexes import CountedList
from medchain.app._registry import Role, get_identity, require_identity
from medchain.app._state import State, load, save
from medchain.types import decode, encode

HEAD_SIZE = 32
MAX_API_URL_CHARS = 256


@dataclass(frozen=True, slots=True)
class CommitHeadArgs:
    seq: int
    """How many entries the head covers (the log's length when it was taken)."""
    head: bytes
    api_url: str
    """Where the node (or gateway) serves its log (GET /v1/disclosures…)."""


@dataclass(frozen=True, slots=True)
class HeadCommit:
    node: bytes
    """The committer's account: a validator's node, or an edge gateway."""
    seq: int
    head: bytes
    api_url: str
    height: int
    time_ms: int


_HISTORY = CountedList(b"dh/")
"""Per node, its commits in order (canonically encoded HeadCommits)."""
_NODES = CountedList(b"dhn/")
"""Under the empty owner: every node that ever committed, in the order it first did."""


def _latest_key(node: bytes) -> bytes:
    return b"dhl/" + node


def latest_head(state: State, node: bytes) -> HeadCommit | None:
    return load(state, _latest_key(node), HeadCommit)


def head_commits(
    state: State, node: bytes, start: int = 0, limit: int | None = None
) -> list[HeadCommit]:
    """The node's commits in order, from the `start`-th (0-based), at most `limit`."""
    count = _HISTORY.count(state, node)
    stop = count if limit is None else min(count, start + limit)
    return [decode(HeadCommit, _HISTORY.get(state, node, i)) for i in range(start, stop)]


def head_commit_count(state: State, node: bytes) -> int:
    return _HISTORY.count(state, node)


def disclosure_nodes(state: State) -> list[HeadCommit]:
    """The latest commit of every node that ever committed, in the order they first did."""
    latest = [latest_head(state, node) for node in _NODES.items(state, b"")]
    return [c for c in latest if c is not None]


def _require_committer(state: State, sender: bytes) -> None:
    """A validator, or an active gateway of a member organisation (as for its batches)."""
    identity = get_identity(state, sender)
    if identity is not None and identity.role is Role.VALIDATOR:
        return
    if get_gateway(state, sender) is not None:
        _require_gateway(state, sender)
        return
    require_identity(state, sender, Role.VALIDATOR)


def commit_head(state: State, call: Call, args: CommitHeadArgs) -> None:
    _require_committer(state, call.sender)
    if len(args.head) != HEAD_SIZE:
        raise InvalidArgument(f"a disclosure head is {HEAD_SIZE} bytes, not {len(args.head)}")
    if not 0 < len(args.api_url) <= MAX_API_URL_CHARS or not args.api_url.startswith(
        ("http://", "https://")
    ):
        raise InvalidArgument(
            f"api_url must be the node's http(s) URL of at most {MAX_API_URL_CHARS} characters"
        )
    if args.seq < 1:
        raise InvalidArgument("seq counts the entries the head covers: at least 1")
    latest = latest_head(state, call.sender)
    if latest is None:
        _NODES.append(state, b"", call.sender)
    elif args.seq <= latest.seq:
        raise InvalidArgument(
            f"seq {args.seq} does not follow this node's last committed seq {latest.seq}: "
            "a disclosure log only grows"
        )
    commit = HeadCommit(
        call.sender, args.seq, args.head, args.api_url, call.block.height, call.block.time_ms
    )
    _HISTORY.append(state, call.sender, encode(commit))
    save(state, _latest_key(call.sender), commit)
    call.emit("disclosures.committed", node=call.sender, seq=args.seq, head=args.head)


METHODS: Methods = {
    "disclosures.commit": (CommitHeadArgs, commit_head),
}
