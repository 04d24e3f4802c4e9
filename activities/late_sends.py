"""A claim's stamp, and its move to now right before a send that waited for its turn behind the
account's request budget (docs/design.md#late-sends). Orders and TP/SLs alike: a claim whose
exchange shows nothing for the visibility window after its stamp is settled as never placed
(or taken over and sent again), so the window must count from the send, not the claim."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from activities.records import Records

# A send that goes this long after its claim's stamp first moves the stamp to now. A third of
# the window at most (of 30 s: a request's 5 s and the time an order takes to show, with room
# to spare), and long enough that only a deep queue pays the database write in its slot.
RESTAMP_AFTER_S = 10.0


def restamp_after_s(window: timedelta) -> float:  # float-ok: seconds
    return min(RESTAMP_AFTER_S, window.total_seconds() / 3)


@dataclass
class ClaimStamp:
    """This attempt's claim: its stamp in the row (`updated_at`, the token of any change to
    it) and this process's monotonic clock no later than that stamp was written."""

    at: datetime
    mono: float  # float-ok: seconds
    sent_at: datetime | None = None  # when the send went, for the alert→order metric

    @property
    def unsent(self) -> bool:
        """Nothing of this attempt's request may have left the process yet."""
        return self.sent_at is None


async def still_ours(records: Records, client_id: str, stamp: ClaimStamp,
                     after_s: float) -> bool:  # float-ok: seconds
    """Right before a send: when the claim was stamped more than `after_s` ago, move its stamp
    to now (compare-and-set on the stamp). False: the claim is no longer this attempt's (taken
    over, or settled) and nothing may be sent under it."""
    if time.monotonic() - stamp.mono <= after_s:
        return True
    mono = time.monotonic()
    at = await records.restamp_claim(client_id, stamp.at)
    if at is None:
        return False
    stamp.at, stamp.mono = at, mono
    return True
