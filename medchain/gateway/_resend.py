"""How a device or a bedside hub sends its readings again when the connection to the
gateway fails before an answer: reset, closed by the server (a keep-alive connection it
timed out just as the request went out), refused while it restarts, or timed out.

Such a request may or may not have reached the gateway. Sending the same signed readings
again is safe: the gateway's replay guard knows every reading it accepted (pending or
committed) and answers a resend `accepted`, with `duplicate: true`; it neither refuses
nor strikes it. So a device that resends loses nothing and is never taken for a replay
attack. The simulated devices (`medchain devices simulate`) and the benchmark's hubs
resend as real ones do: a few times, waiting longer each time."""

from __future__ import annotations

from collections.abc import Callable

import tenacity

RESEND_ATTEMPTS = 5
"""Times a reading is sent, the first included, before it counts as unreachable."""
RESEND_FIRST_WAIT_S = 0.2
"""The wait before the first resend; it doubles (with jitter) up to RESEND_MAX_WAIT_S."""
RESEND_MAX_WAIT_S = 5.0


def resending(
    lost: Callable[[BaseException], bool],
    *,
    on_resend: Callable[[BaseException], None] | None = None,
) -> tenacity.AsyncRetrying:
    """Retries for `async for attempt in resending(...): with attempt: ...`: the block runs
    again while it raises an exception `lost` says is a lost connection, at most
    RESEND_ATTEMPTS times in all (then that exception is raised); `on_resend` is told of
    each one resent. Any other exception is raised at once."""

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_resend is not None and state.outcome is not None:
            failure = state.outcome.exception()
            if failure is not None:
                on_resend(failure)

    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception(lost),
        stop=tenacity.stop_after_attempt(RESEND_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=RESEND_FIRST_WAIT_S, max=RESEND_MAX_WAIT_S)
        + tenacity.wait_random(0, RESEND_FIRST_WAIT_S),  # devices cut off together spread out
        before_sleep=before_sleep,
        reraise=True,
    )
