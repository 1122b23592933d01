"""Loading the Ethereum client without its change to the interpreter.

py_ecc, which eth-account imports, raises Python's recursion limit to 100,000 for
the whole process. That limit is what makes too deep a recursion a RecursionError
before the C stack overflows: at 100,000, a 200 KB request body of nested JSON
arrays overflows the stack in the json parser and the node dies (SIGSEGV) instead
of answering 400. Nothing medchain calls in these libraries needs the higher limit
(secp256k1 keys and signatures recurse a few hundred levels at most)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def keeping_recursion_limit() -> Iterator[None]:
    """Import web3 or eth-account inside this: the recursion limit is put back after."""
    limit = sys.getrecursionlimit()
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)
