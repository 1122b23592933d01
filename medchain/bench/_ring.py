"""Ring signature timings: bLSAG sign and verify on ristretto255 for given ring
sizes (paper 002's anonymous submission). A benchmark, not a test."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from medchain.crypto import AccountKeys, ring_sign, ring_verify


@dataclass(frozen=True)
class RingTiming:
    ring_size: int
    runs: int
    sign_ms_p50: float
    sign_ms_mean: float
    verify_ms_p50: float
    verify_ms_mean: float


def run_ring_bench(sizes: tuple[int, ...] = (11, 64), runs: int = 200) -> list[RingTiming]:
    timings = []
    for size in sizes:
        members = [AccountKeys.generate() for _ in range(size)]
        ring = [m.ring_public_key for m in members]
        signer = members[size // 2]
        sign_ms, verify_ms = [], []
        for i in range(runs):
            message = b"medchain ring bench %d" % i
            began = time.perf_counter()
            signature = ring_sign(message, ring, signer.ring_secret)
            sign_ms.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            assert ring_verify(message, ring, signature, max(size, 64))
            verify_ms.append((time.perf_counter() - began) * 1000)
        timings.append(
            RingTiming(
                size,
                runs,
                statistics.median(sign_ms),
                statistics.fmean(sign_ms),
                statistics.median(verify_ms),
                statistics.fmean(verify_ms),
            )
        )
    return timings
