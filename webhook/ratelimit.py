"""Per-strategy rate limit: a token bucket of `per_min` tokens refilled evenly over a minute.

In-process, like the ack it protects: each webhook process enforces the limit on what it
receives. The limit applies after authentication, so nobody without the secret can use up a
strategy's budget and block its genuine alerts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


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
