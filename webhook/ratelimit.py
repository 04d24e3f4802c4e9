"""Per-strategy rate limit: a token bucket of `per_min` tokens refilled evenly over a minute.

In-process, like the ack it protects: each webhook process enforces the limit on what it
receives. The limit applies after authentication, so nobody without the secret can use up a
strategy's budget and block its genuine alerts. Callers without a valid secret have their own
limit, per source address (AnonymousLimiter), so a flood of junk costs little and records little.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger("webhook")


@dataclass
class _Bucket:
    tokens: float  # float-ok: time or rate, not money
    stamp: float  # float-ok: time or rate, not money


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def allow(self, key: int, per_min: int) -> float | None:  # float-ok: time or rate, not money
        """None when the alert may pass (and takes a token), else seconds until one frees."""
        now = self._clock()
        rate = per_min / 60.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(per_min), stamp=now)  # float-ok: time or rate, not money
        else:
            bucket.tokens = min(float(per_min), bucket.tokens + (now - bucket.stamp) * rate)  # float-ok: time or rate, not money
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate


# --- callers without a secret ----------------------------------------------------------------


def address_key(address: str | None) -> str:
    """The unit the anonymous limit counts: the address, an IPv6 /64 (one host's usual share,
    so a host cannot pick a fresh address per request), or "unknown"."""
    if address is None:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Caller:
    bucket: _Bucket
    window: float  # float-ok: time, the start of the current minute of records
    recorded: int = 0  # refusals recorded as signal rows in this window
    unrecorded: int = 0  # refusals answered but not recorded in this window
    throttled: int = 0  # requests answered 429 in this window


class AnonymousLimiter:
    """Per source address: a token bucket spent by every delivery refused before (or at) the
    secret check, and a cap on how many of those become signal rows per minute. Memory is
    bounded: at most `max_addresses` callers, the least recently seen forgotten first (a
    forgotten one starts again with a full bucket, which only ever lets more through).

    `exempt` addresses (TradingView's shared senders by default) are never throttled, only
    their records capped: one of its users must not silence the others' alerts."""

    def __init__(
        self,
        burst: int,
        per_min: int,
        recorded_per_min: int,
        max_addresses: int,
        exempt: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = per_min / 60.0
        self.recorded_per_min = recorded_per_min
        self.max_addresses = max_addresses
        self.exempt = frozenset(address_key(a) for a in exempt)
        self._clock = clock
        self._callers: OrderedDict[str, _Caller] = OrderedDict()

    def wait(self, address: str | None) -> float | None:  # float-ok: time, not money
        """Seconds this address must wait before it may be served again, or None. Called
        before the body is read; a throttled request costs nothing else."""
        key = address_key(address)
        if key in self.exempt:
            return None
        caller = self._caller(key)
        if caller.bucket.tokens >= 1.0:
            return None
        caller.throttled += 1
        return (1.0 - caller.bucket.tokens) / self.rate

    def refused(self, address: str | None) -> bool:
        """Count a delivery refused before its secret was accepted; True when it is to be
        recorded as a signal row (the first `recorded_per_min` of this minute)."""
        caller = self._caller(address_key(address))
        caller.bucket.tokens = max(0.0, caller.bucket.tokens - 1.0)
        if caller.recorded < self.recorded_per_min:
            caller.recorded += 1
            return True
        caller.unrecorded += 1
        return False

    def _caller(self, key: str) -> _Caller:
        now = self._clock()
        caller = self._callers.get(key)
        if caller is None:
            caller = self._callers[key] = _Caller(_Bucket(float(self.burst), now), now)  # float-ok: tokens
            while len(self._callers) > self.max_addresses:
                old_key, old = self._callers.popitem(last=False)
                _report(old_key, old)
        else:
            self._callers.move_to_end(key)
            bucket = caller.bucket
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)  # float-ok: tokens
            bucket.stamp = now
        if now - caller.window >= 60.0:
            _report(key, caller)
            caller.window, caller.recorded, caller.unrecorded, caller.throttled = now, 0, 0, 0
        return caller


def _report(key: str, caller: _Caller) -> None:
    """One log line per address and minute for what was not recorded row by row."""
    if caller.unrecorded or caller.throttled:
        log.warning(
            "unauthenticated deliveries from %s in one minute: %d refused without a record, "
            "%d answered 429",
            key, caller.unrecorded, caller.throttled,
        )
