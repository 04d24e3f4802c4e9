"""The pure part of exchange/shared_budget.py: the slots a process holds (the ledger and the
waiting are tested on a real database in tests/db/test_budget_ledger.py)."""

from __future__ import annotations

from decimal import Decimal

from exchange.budget import SlidingWindow
from exchange.shared_budget import _Endpoint, _Slots


def endpoint() -> _Endpoint:
    return _Endpoint(SlidingWindow(Decimal(10)))


def test_a_lease_gives_as_many_slots_as_granted_then_none() -> None:
    ep = endpoint()
    ep.slots.append(_Slots(start=10.0, end=10.1, left=2))
    assert ep.take(10.0) == _Slots(10.0, 10.1, 1)
    assert ep.take(10.05) == _Slots(10.0, 10.1, 1)
    assert ep.take(10.05) is None


def test_a_slot_past_its_end_is_never_handed_out() -> None:
    ep = endpoint()
    ep.slots.append(_Slots(start=10.0, end=10.1, left=3))
    ep.slots.append(_Slots(start=11.0, end=11.1, left=1))
    assert ep.take(10.2) == _Slots(11.0, 11.1, 1)  # the first lease passed unused
    assert not ep.has(10.2)


def test_a_future_slot_is_handed_out_with_its_start() -> None:
    """The request waits for it (exchange/shared_budget.py's acquire sleeps until `start`)."""
    ep = endpoint()
    ep.slots.append(_Slots(start=12.0, end=12.1, left=1))
    assert ep.take(10.0) == _Slots(12.0, 12.1, 1)
