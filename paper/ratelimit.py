"""BitUnix's request limits (docs/bitunix.md#rate-limits), scaled by
Settings.paper_rate_limit_scale.

Per endpoint: public endpoints 10/s per IP; private endpoints 10/s per account (uid, here the
api-key), cancel_orders / flash_close_position / adjust_position_margin 5/s, batch_order and
close_all_position 1/s. A token bucket per (identity, path) holding max(1, rate) tokens and
refilled at `rate` per second; an empty bucket answers errors.REQUEST_TOO_FREQUENT (10006).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

PREFIX = "/api/v1/futures/"
PUBLIC_PER_SECOND = 10
PRIVATE_PER_SECOND = 10
PRIVATE_OVERRIDES = {
    "trade/cancel_orders": 5,
    "trade/flash_close_position": 5,
    "account/adjust_position_margin": 5,
    "trade/batch_order": 1,
    "trade/close_all_position": 1,
}


def base_rate(path: str, private: bool) -> int:
    if not private:
        return PUBLIC_PER_SECOND
    return PRIVATE_OVERRIDES.get(path.removeprefix(PREFIX), PRIVATE_PER_SECOND)


class RateLimiter:
    def __init__(self, scale: Decimal, clock: Callable[[], float] = time.monotonic) -> None:
        self.scale = float(scale)  # float-ok: time or rate, not money
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}

    def allow(self, identity: str, path: str, private: bool) -> bool:
        rate = base_rate(path, private) * self.scale
        capacity = max(1.0, rate)
        now = self._clock()
        tokens, last = self._buckets.get((identity, path), (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[(identity, path)] = (tokens, now)
            return False
        self._buckets[(identity, path)] = (tokens - 1.0, now)
        return True

    def reset(self) -> None:
        self._buckets.clear()
