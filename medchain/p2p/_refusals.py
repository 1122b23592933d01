"""Refused connections, counted by cause and logged at most once per interval per cause.

A flood of connections (one address holding every handshake slot, a scanner, a peer on
the wrong network redialling) must not turn into a log line per connection: the first
refusal of a cause after a quiet interval is logged at once with its reason, the ones
that follow within the interval are summed up in one line when it ends, with the
addresses they came from. The counts since start feed the node's /metrics.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

_SHOWN_ADDRESSES = 3
"""Addresses named in a summary line, the busiest first."""


class Refusal(enum.StrEnum):
    """Why a connection was refused before it carried data; the value is the metric label."""

    BUSY = "busy"
    ADDRESS_BUSY = "address_busy"
    TLS = "tls"
    NOT_ALLOWED = "not_allowed"
    WRONG_PEER = "wrong_peer"
    BAD_HELLO = "bad_hello"
    WRONG_NETWORK = "wrong_network"
    PENALISED = "penalised"
    TIMEOUT = "timeout"
    CLOSED = "closed"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Refusal.BUSY: "too many pending handshakes",
    Refusal.ADDRESS_BUSY: "too many pending handshakes from one address",
    Refusal.TLS: "TLS handshake failed",
    Refusal.NOT_ALLOWED: "certificate key not in the allow-list",
    Refusal.WRONG_PEER: "reached another key than the one dialled",
    Refusal.BAD_HELLO: "malformed handshake",
    Refusal.WRONG_NETWORK: "peer on another network",
    Refusal.PENALISED: "peer refused for a while after a protocol violation",
    Refusal.TIMEOUT: "handshake did not finish in time",
    Refusal.CLOSED: "closed before the handshake finished",
}


def address_group(host: str) -> str:
    """What counts as one address for per-address limits: an IPv4 address (IPv4-mapped
    IPv6 included), or the /64 an IPv6 address is in (one site or host gets a whole
    /64, so its addresses are one sender)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Window:
    """Refusals of one cause since `start`, not logged yet."""

    start: float
    count: int = 0
    logged: int = 0
    """Of `count`, logged one by one (the first after a quiet interval)."""
    addresses: Counter[str] = field(default_factory=Counter)
    other_addresses: int = 0
    """Refusals from addresses beyond the `max_addresses` tracked."""


class RefusalLog:
    """Counts refusals by cause and logs them without flooding the log.

    `refused()` logs the first refusal of a cause at once and opens an interval; the
    rest of that interval only counts. `flush()` (called now and then; `refused()` does
    too) writes one summary per cause whose interval ended with refusals not logged yet
    (the count covers the whole interval), and opens the next interval; a cause with
    none is quiet again. So each cause gets at
    most one line per `interval_s`, whatever the rate.
    """

    def __init__(
        self,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        interval_s: float,
        clock: Callable[[], float],
        max_addresses: int = 256,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the refusal log interval must be positive")
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._max_addresses = max_addresses
        self._windows: dict[Refusal, _Window] = {}
        self.counts: dict[Refusal, int] = dict.fromkeys(Refusal, 0)
        """Refusals since start, by cause."""

    def refused(self, cause: Refusal, address: str, detail: str, inbound: bool = True) -> None:
        """Count one refused connection with `address` (grouped as `address_group` does)
        and log it, now or in the cause's next summary."""
        self.counts[cause] += 1
        now = self._clock()
        self._flush_cause(cause, now)
        window = self._windows.get(cause)
        if window is None:
            window = self._windows[cause] = _Window(start=now, logged=1)
            self._log.info(
                "refused a connection %s %s: %s", "from" if inbound else "to", address, detail
            )
        window.count += 1
        group = address_group(address)
        if group in window.addresses or len(window.addresses) < self._max_addresses:
            window.addresses[group] += 1
        else:
            window.other_addresses += 1

    def flush(self, final: bool = False) -> None:
        """Log the summary of every cause whose interval has ended; `final` (the
        transport closing): of every cause, ended or not."""
        now = self._clock()
        for cause in list(self._windows):
            self._flush_cause(cause, now, final)

    def _flush_cause(self, cause: Refusal, now: float, final: bool = False) -> None:
        window = self._windows.get(cause)
        if window is None or (now - window.start < self._interval and not final):
            return
        if window.count == window.logged:
            del self._windows[cause]
            return
        self._windows[cause] = _Window(start=now)
        self._log.info(
            "refused %s in the last %.0f s: %s (%s)",
            _connections(window.count),
            now - window.start,
            cause.description,
            self._from(window),
        )

    @staticmethod
    def _from(window: _Window) -> str:
        busiest = sorted(window.addresses.items(), key=lambda item: (-item[1], item[0]))
        parts = [f"{address}: {count:,}" for address, count in busiest[:_SHOWN_ADDRESSES]]
        rest = sum(count for _, count in busiest[_SHOWN_ADDRESSES:]) + window.other_addresses
        if rest:
            parts.append(f"{rest:,} from other addresses")
        return ", ".join(parts)


def _connections(count: int) -> str:
    return "1 connection" if count == 1 else f"{count:,} connections"
