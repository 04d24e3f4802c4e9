"""How far our clock is from BitUnix's (docs/bitunix.md#server-time).

BitUnix documents no server-time endpoint, so the clock is read from the HTTP `Date` header
every answer carries. That header has whole seconds: the server's time when it answered lies in
`[date, date + 1 s)`, and that moment lies between our send and our receipt of the answer. So
one answer bounds the skew (server − ours) to

    [date − received, date + 1000 − sent]   (milliseconds)

and `skew_ms` is the smallest skew that interval allows: 0 when it holds 0, else its end nearest
0. It never over-states the skew (a slow answer only widens the interval), so a refusal is
never a false alarm; it can under-state it by up to a second plus the round trip.

`ClockWatch` keeps the last answer's reading (every request of the client updates it, so the
bound is always as fresh as the last exchange call) and judges it against two bounds:
above `warn_ms` it logs a warning, above `max_ms` `refusal()` names why no new entry may be
sent (the order activity refuses it; exits and protection still go). Crossing a bound is logged
once, when it happens; `log_check()` logs the reading (the worker's start and the account
watcher, hourly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

log = logging.getLogger("exchange.clock")

DEFAULT_WARN_MS = 1000
DEFAULT_MAX_MS = 5000
DATE_RESOLUTION_MS = 1000


class ClockState(StrEnum):
    UNKNOWN = "unknown"  # no answer with a readable Date yet
    OK = "ok"
    WARN = "warn"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One answer's bound on the skew, server − ours, in ms."""

    low_ms: int
    high_ms: int

    @property
    def skew_ms(self) -> int:
        if self.low_ms > 0:
            return self.low_ms
        if self.high_ms < 0:
            return self.high_ms
        return 0

    def describe(self) -> str:
        skew = self.skew_ms
        if skew == 0:
            return (f"within a second of BitUnix's clock (skew between {self.low_ms} and "
                    f"{self.high_ms} ms)")
        way = "behind" if skew > 0 else "ahead of"
        return f"at least {abs(skew)} ms {way} BitUnix's clock"


def date_ms(date_header: str) -> int | None:
    """An HTTP Date as epoch ms (whole seconds); None when it cannot be read."""
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server is None or server.tzinfo is None:
        return None
    return int(server.timestamp()) * 1000


def reading(date: int, sent_ms: int, received_ms: int) -> ClockReading:
    """The bound one answer, dated `date` (ms, whole seconds), gives."""
    return ClockReading(date - received_ms, date + DATE_RESOLUTION_MS - sent_ms)


class ClockWatch:
    def __init__(self, warn_ms: int = DEFAULT_WARN_MS, max_ms: int = DEFAULT_MAX_MS) -> None:
        if not 0 < warn_ms <= max_ms:
            raise ValueError("the clock bounds need 0 < warn_ms <= max_ms")
        self.warn_ms = warn_ms
        self.max_ms = max_ms
        self.last: ClockReading | None = None
        self._state = ClockState.UNKNOWN
        self._date: str | None = None
        self._date_ms: int | None = None

    def observe(self, date_header: str | None, sent_ms: int, received_ms: int) -> None:
        """Take one answer's Date header (None or unreadable: nothing changes)."""
        if not date_header:
            return
        if date_header != self._date:  # parsed once per second of server time
            self._date, self._date_ms = date_header, date_ms(date_header)
        if self._date_ms is None:
            return
        self.last = reading(self._date_ms, sent_ms, received_ms)
        state = self.state
        if state is not self._state:
            self._log(state, changed=True)
            self._state = state

    @property
    def state(self) -> ClockState:
        if self.last is None:
            return ClockState.UNKNOWN
        skew = abs(self.last.skew_ms)
        if skew > self.max_ms:
            return ClockState.REFUSE
        if skew > self.warn_ms:
            return ClockState.WARN
        return ClockState.OK

    def refusal(self) -> str | None:
        """Why a new entry must not be sent now, or None."""
        if self.state is not ClockState.REFUSE:
            return None
        assert self.last is not None
        return (f"this server's clock is {self.last.describe()}, more than "
                f"TRADEWIRE_CLOCK_SKEW_MAX_MS={self.max_ms}: no new entry until it is fixed "
                "(sync it with NTP, e.g. `timedatectl set-ntp true`)")

    def summary(self) -> str:
        if self.last is None:
            return "no answer from the exchange yet"
        return f"this server's clock is {self.last.describe()}"

    def log_check(self) -> ClockState:
        """Log the reading (the worker's start, then hourly); returns the state."""
        state = self.state
        self._log(state, changed=False)
        return state

    def _log(self, state: ClockState, *, changed: bool) -> None:
        what = self.summary()
        if state is ClockState.REFUSE:
            log.error("clock: %s (over TRADEWIRE_CLOCK_SKEW_MAX_MS=%d): new entries are "
                      "refused until it is fixed", what, self.max_ms)
        elif state is ClockState.WARN:
            log.warning("clock: %s (over TRADEWIRE_CLOCK_SKEW_WARN_MS=%d; entries are refused "
                        "past %d): sync it with NTP", what, self.warn_ms, self.max_ms)
        elif state is ClockState.OK and (changed or log.isEnabledFor(logging.INFO)):
            log.info("clock: %s", what)
