"""The account's request budget shared by every process that signs, with a local fallback.

BitUnix counts requests per endpoint per account (docs/bitunix.md#rate-limits); a budget held
per process lets a second worker double the account's rate. SharedBudget takes its slots from
one ledger every process shares (db/budget_ledger.py: a row per endpoint in PostgreSQL, granted
from in one statement under the row's lock), so the account's rate stays within the limit
however many processes sign (docs/design.md#request-budgets).

A slot is leased for a short interval (LEASE_S) in which this process sends one request; the
ledger never grants more slots than keep every window within the limit whenever, inside its
interval, each slot is used. Leases are taken when requests wait for them and only as many as
wait: a slot leased ahead of need would count against the other processes whether used or not.
A slot not granted now comes with a later start, and the request waits for it; it is never
dropped. A slot whose interval passed before its request could go (an event loop that overslept)
is given up and another one leased: a request is never sent outside its slot. A request
cancelled while it waits for its slot gives the slot back to the process's hand, for the next
request to take.

When the ledger does not answer (the database is down or slower than LEASE_TIMEOUT_S), this
process falls back to its own local budget (exchange/budget.py, sized by its
TRADEWIRE_EXCHANGE_BUDGET_SHARE) for FALLBACK_HOLD_S before asking the ledger again: closes and
stops still go out, at this process's share. That local budget also counts every request sent on
a leased slot, so taking over never starts with a burst on top of what was just sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from exchange.budget import Budget, SlidingWindow, rate_for

log = logging.getLogger("exchange.shared_budget")

# How long a leased slot stays usable, at least: short, because the ledger counts a slot busy
# until its end (a single process gets the limit's count of requests per window + lease). A
# lease is at least twice the last answer's round trip as this process saw it (a busy event loop
# stretches it), up to MAX_LEASE_S: a slot must still be usable when its answer is read.
LEASE_S = 0.1
MAX_LEASE_S = 2.0
# Widens each window beyond BitUnix's second, as exchange/budget.py's JITTER_MARGIN_S does, but
# more: a slot's request leaves after its grant by however long the process's event loop takes
# to get to it, which on a loaded machine is tens of milliseconds and more; two requests granted
# a window apart must still arrive more than a second apart.
SEND_MARGIN_S = 0.15
# A ledger that has not answered in this long is treated as down (one that refuses the
# connection or errs, at once). Long: a loaded machine makes a healthy database look slow, and
# the fallback shares of the processes may add up to more than the limit.
LEASE_TIMEOUT_S = 5.0
# After a failure the ledger is not asked again for this long (each try may delay a request).
FALLBACK_HOLD_S = 30.0


class LeaseAnswer(Protocol):
    """What the ledger grants: `granted` slots usable once each between `start` and `end`, in
    the ledger's clock, which read `now` when it granted them."""

    @property
    def granted(self) -> int: ...
    @property
    def start(self) -> float: ...  # float-ok: seconds
    @property
    def end(self) -> float: ...  # float-ok: seconds
    @property
    def now(self) -> float: ...  # float-ok: seconds


class Ledger(Protocol):
    async def lease(self, endpoint: str, *, capacity: int, window_s: float,  # float-ok: seconds
                    lease_s: float, want: int) -> LeaseAnswer: ...  # float-ok: seconds


@dataclass
class _Slots:
    start: float  # float-ok: seconds, this process's clock
    end: float  # float-ok: seconds
    left: int


class _Endpoint:
    """One endpoint's slots in hand and the requests waiting for one."""

    def __init__(self, window: SlidingWindow) -> None:
        self.capacity = window.capacity
        self.window_s = window.window_s
        self.slots: deque[_Slots] = deque()
        self.waiting = 0  # requests without a slot
        self.leasing = asyncio.Lock()  # one lease in flight per endpoint: it serves every waiter

    def has(self, now: float) -> bool:  # float-ok: seconds
        """Whether a slot is in hand (used or passed ones are dropped)."""
        while self.slots and (self.slots[0].left == 0 or self.slots[0].end < now):
            self.slots.popleft()
        return bool(self.slots)

    def take(self, now: float) -> _Slots | None:  # float-ok: seconds
        """A slot to use (its interval), gone from the hand; None when none is left."""
        if not self.has(now):
            return None
        self.slots[0].left -= 1
        return _Slots(self.slots[0].start, self.slots[0].end, 1)

    def give_back(self, slot: _Slots) -> None:
        """A slot taken and not used (its request was cancelled before it went): back in the
        hand, in start order, for the next request of this process."""
        for held in self.slots:
            if (held.start, held.end) == (slot.start, slot.end):
                held.left += slot.left
                return
        self.slots.append(_Slots(slot.start, slot.end, slot.left))
        self.slots = deque(sorted(self.slots, key=lambda s: s.start))


class SharedBudget:
    """The account's per-endpoint request budgets, shared through `ledger` with every other
    process; `fallback` is this process's own budget for when the ledger does not answer."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        fallback: Budget,
        clock: Callable[[], float] = time.monotonic,  # float-ok: seconds
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,  # float-ok: seconds
        lease_s: float = LEASE_S,  # float-ok: seconds
        timeout_s: float = LEASE_TIMEOUT_S,  # float-ok: seconds
    ) -> None:
        self._ledger = ledger
        self._fallback = fallback
        self._clock = clock
        self._sleep = sleep
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._endpoints: dict[str, _Endpoint] = {}
        self._down_until = float("-inf")  # float-ok: seconds
        self._round_trip_s = 0.0  # the last lease's, as this process saw it

    def _endpoint(self, path: str) -> _Endpoint:
        found = self._endpoints.get(path)
        if found is None:
            # The whole account's limit (share 1): the ledger is the only budget there is.
            rate = rate_for(path, share=Decimal(1), scale=self._fallback.scale)
            found = self._endpoints[path] = _Endpoint(SlidingWindow(rate, margin_s=SEND_MARGIN_S))
        return found

    async def acquire(self, path: str) -> float:  # float-ok: seconds
        """Wait until a request to `path` fits the account's budget; return the time waited."""
        began = self._clock()
        ep = self._endpoint(path)
        while True:
            slot = ep.take(self._clock())
            if slot is None:
                if self._clock() < self._down_until:
                    return await self._fallback.acquire(path) + (self._clock() - began)
                ep.waiting += 1
                try:
                    async with ep.leasing:
                        # Another waiter's lease may have brought slots while this one queued.
                        if not ep.has(self._clock()):
                            await self._lease(path, ep)
                finally:
                    ep.waiting -= 1
                continue
            now = self._clock()
            if slot.start > now:
                try:
                    await self._sleep(slot.start - now)
                except asyncio.CancelledError:
                    # Nothing was sent on it: unused, it would go by empty while the retry of
                    # this request queued behind it (a candle close's timed-out placements).
                    ep.give_back(slot)
                    raise
                now = self._clock()
            if now <= slot.end:
                self._fallback.window(path).record(now)
                return now - began
            log.debug("%s: a leased slot passed before its request could go; leasing again", path)

    async def _lease(self, path: str, ep: _Endpoint) -> None:
        asked = self._clock()
        lease_s = min(MAX_LEASE_S, max(self._lease_s, 2 * self._round_trip_s))
        try:
            answer = await asyncio.wait_for(
                self._ledger.lease(path, capacity=ep.capacity, window_s=ep.window_s,
                                   lease_s=lease_s, want=max(1, ep.waiting)),
                self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - any ledger failure: fall back, never fail the request
            self._down_until = self._clock() + FALLBACK_HOLD_S
            log.warning("the shared request budget did not answer (%s); this process uses its "
                        "own share for %.0f s", type(exc).__name__, FALLBACK_HOLD_S)
            return
        answered = self._clock()
        self._round_trip_s = answered - asked
        # The ledger read its clock somewhere between asking and the answer: the slots start no
        # earlier than `answered` says and end no later than `asked` says.
        start = answered + (answer.start - answer.now)
        end = asked + (answer.end - answer.now)
        if end < start:
            # The answer took longer than the lease lasts: its slots are given up (the ledger
            # counts them until they end) and the next lease is longer.
            log.info("%s: a lease answered in %.0f ms, after it ended; leasing longer", path,
                     self._round_trip_s * 1000)
            return
        ep.slots.append(_Slots(start, end, answer.granted))
