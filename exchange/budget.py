"""Per-endpoint request budgets for one account, so this process never trips BitUnix's limits.

BitUnix counts requests per endpoint per account (public ones per IP) over one-second windows
(docs/bitunix.md#rate-limits). Each endpoint gets a sliding-window limiter: at most `n` grants in
any `window` seconds, where n/window is BitUnix's rate × this process's share × the benchmark scale.
`acquire` reserves the next free slot at once (first come, first served) and then sleeps until it;
the pure part (`SlidingWindow.reserve`) takes the time as an argument, so tests drive it with a fake
clock and never sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Protocol

PUBLIC_PREFIX = "/api/v1/futures/market/"
PRIVATE_DEFAULT = Decimal(10)
PUBLIC_DEFAULT = Decimal(10)
# Requests per second per account (BitUnix's newer docs); every other private path: 10/s.
BITUNIX_LIMITS: Mapping[str, Decimal] = {
    "/api/v1/futures/trade/cancel_orders": Decimal(5),
    "/api/v1/futures/trade/flash_close_position": Decimal(5),
    "/api/v1/futures/account/adjust_position_margin": Decimal(5),
    "/api/v1/futures/trade/batch_order": Decimal(1),
    "/api/v1/futures/trade/close_all_position": Decimal(1),
}
# Our clock stamps the send, the exchange's stamps the arrival; two sends exactly one window
# apart can arrive a little less than that apart. Widening each window by this much keeps
# network jitter from turning a compliant burst into a 10006.
JITTER_MARGIN_S = 0.15  # 0.05 let one 10006 through on a loaded machine (a full test run)


def rate_for(path: str, *, share: Decimal, scale: Decimal) -> Decimal:
    base = BITUNIX_LIMITS.get(path)
    if base is None:
        base = PUBLIC_DEFAULT if path.startswith(PUBLIC_PREFIX) else PRIVATE_DEFAULT
    return base * share * scale


class RequestBudget(Protocol):
    """What the client waits on before each request: this process's Budget, or the account's
    SharedBudget (exchange/shared_budget.py)."""

    async def acquire(self, path: str) -> float: ...  # float-ok: seconds


class SlidingWindow:
    """At most `capacity` grants in any `window_s` seconds. Pure: the caller passes `now`."""

    def __init__(self, rate_per_s: Decimal, *, margin_s: float = JITTER_MARGIN_S) -> None:  # float-ok: time or rate, not money
        if rate_per_s <= 0:
            raise ValueError(f"a request budget must be positive, got {rate_per_s}/s")
        # A whole number of grants per window; below 1/s, one grant per 1/rate seconds.
        self.capacity = max(1, math.floor(rate_per_s))
        self.window_s = max(1.0, float(self.capacity / rate_per_s)) + margin_s  # float-ok: time or rate, not money
        self._grants: deque[float] = deque(maxlen=self.capacity)
        # Booked slots given back unused (their requests were cancelled while they waited):
        # still counted in `_grants`, so the next booking takes one as it is.
        self._freed: list[float] = []

    def book(self, now: float) -> float:  # float-ok: time or rate, not money
        """Book the earliest slot at or after `now`; return when it is."""
        while self._freed and self._freed[0] < now:
            heapq.heappop(self._freed)  # passed unused
        if self._freed:
            return heapq.heappop(self._freed)
        at = now
        if len(self._grants) == self.capacity:
            at = max(now, self._grants[0] + self.window_s)
        self._grants.append(at)  # maxlen drops the oldest grant
        return at

    def reserve(self, now: float) -> float:  # float-ok: time or rate, not money
        """Book the earliest slot at or after `now`; return how long to wait for it."""
        return self.book(now) - now

    def release(self, at: float) -> None:  # float-ok: time or rate, not money
        """Give back a slot booked for `at` and not used (its request was cancelled while it
        waited): the next booking before `at` takes that very slot. It stays counted, so no
        window ever holds more than `capacity` (removing it would let a booking go at once,
        beside the grants the window no longer lists)."""
        heapq.heappush(self._freed, at)

    def record(self, at: float) -> None:  # float-ok: time or rate, not money
        """Count a request sent at `at` on a slot granted elsewhere (the shared budget), so
        this window knows what this process sent if it has to take over. Never dated before
        the newest grant (the window stays in order; later is the safe side)."""
        self._grants.append(max(at, self._grants[-1]) if self._grants else at)


class Budget:
    """The request budgets of one account in this process, one window per endpoint path.

    Share one Budget between clients of the same account in a process; each process's
    `share` of the account's limits is set in its settings.
    """

    def __init__(
        self,
        *,
        share: Decimal = Decimal(1),
        scale: Decimal = Decimal(1),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not Decimal(0) < share <= Decimal(1):
            raise ValueError(f"exchange_budget_share must be in (0, 1], got {share}")
        if scale <= 0:
            raise ValueError(f"exchange_budget_scale must be positive, got {scale}")
        self.share = share
        self.scale = scale
        self._clock = clock
        self._sleep = sleep
        self._windows: dict[str, SlidingWindow] = {}

    def window(self, path: str) -> SlidingWindow:
        found = self._windows.get(path)
        if found is None:
            found = SlidingWindow(rate_for(path, share=self.share, scale=self.scale))
            self._windows[path] = found
        return found

    async def acquire(self, path: str) -> float:  # float-ok: time or rate, not money
        """Wait until a request to `path` fits the budget; return the time waited (s)."""
        window = self.window(path)
        now = self._clock()
        at = window.book(now)
        delay = at - now
        if delay > 0:
            try:
                await self._sleep(delay)
            except asyncio.CancelledError:
                window.release(at)  # nothing went: the slot is the next request's
                raise
        return delay
