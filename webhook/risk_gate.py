"""Intake's risk gate (docs/design.md#risk): what the trading states and `max_open_trades`
let an alert do, decided in the intake's transaction after the duplicate check. The claim of
every opening order checks the states again (activities/risk.py), so this is the early,
recorded answer, not the only guard."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from activities.risk import effective_state, strategy_limits
from db.models import Strategy
from trading.risk import (
    ACCOUNT,
    RiskLimits,
    RiskRefused,
    scope_label,
    state_refusal,
    strategy_scope,
)
from trading.risk import check_open_trades as within_open_trades
from trading.types import Intent, PositionSide, TradingState
from webhook import risk_queries
from webhook.intent import CLOSES, REVERSES
from webhook.plans import Refused
from webhook.queries import Delivery

# A reverse's close half: the exit of the side it leaves.
_CLOSE_HALF = {Intent.REVERSE_TO_LONG: Intent.CLOSE_SHORT, Intent.REVERSE_TO_SHORT: Intent.CLOSE_LONG}
_LEAVES = {Intent.REVERSE_TO_LONG: PositionSide.SHORT, Intent.REVERSE_TO_SHORT: PositionSide.LONG}


async def admit(
    session: AsyncSession, d: Delivery, strategy: Strategy, account_limits: RiskLimits,
    *, recorded: bool,
) -> str | None:
    """What the trading states and `max_open_trades` allow (docs/design.md#risk): refuses
    (422) what they forbid. A reverse under REDUCE_ONLY keeps only its close half: `d.intent`
    becomes that exit, and the returned note says so (the answer and the signal row carry it).
    `recorded`: the alert's trade row exists already (accepted, Temporal never took its
    start): it is not counted again, nor cut to an exit (its row is a reverse's).
    The claim of every opening order checks the states again (activities/risk.py), so a
    state changed after this read still stops the entry."""
    assert d.intent is not None and d.symbol is not None
    eff = await effective_state(session, strategy.name)
    if d.intent in REVERSES and eff.state is TradingState.REDUCE_ONLY and not recorded:
        note = (f"risk: the {scope_label(eff.scope)} is REDUCE_ONLY: only this reverse's close half "
                f"is carried out ({d.intent.value} became {_CLOSE_HALF[d.intent].value}); "
                "nothing new is opened")
        d.intent = _CLOSE_HALF[d.intent]
        return note
    # A reverse is refused whole when its exit is: both of its halves are new orders.
    opens = d.intent not in CLOSES and not (d.intent in REVERSES and not eff.state.exits)
    refusal = state_refusal(eff.state, eff.scope, opens=opens)
    if refusal is not None:
        raise Refused(422, refusal.message)
    if d.intent not in CLOSES and not recorded:
        try:
            await check_open_trades(session, d, strategy, account_limits)
        except RiskRefused as exc:
            raise Refused(422, exc.message) from None
    return None


async def check_open_trades(
    session: AsyncSession, d: Delivery, strategy: Strategy, account_limits: RiskLimits
) -> None:
    """One more trade within the strategy's and the account's `max_open_trades`. Each count is
    taken under an advisory lock of its scope held until commit (the trade row is inserted in
    this transaction), taken only while that scope has the limit: the strategy-and-symbol lock
    alone would let alerts of two symbols both pass."""
    assert d.intent is not None and d.symbol is not None
    replaced = ((strategy.id, d.symbol, _LEAVES[d.intent]) if d.intent in REVERSES else None)
    own = strategy_limits(strategy)
    if own.max_open_trades is not None:  # the strategy's lock first, always in this order
        await risk_queries.lock_open_count(session, f"strategy:{strategy.id}")
        within_open_trades(own, strategy_scope(strategy.name), await risk_queries.count_open_trades(
            session, strategy_id=strategy.id, replaced=replaced))
    if account_limits.max_open_trades is not None:
        await risk_queries.lock_open_count(session, ACCOUNT)
        within_open_trades(account_limits, ACCOUNT, await risk_queries.count_open_trades(
            session, strategy_id=None, replaced=replaced))


async def opening_refusal(session: AsyncSession, strategy: Strategy) -> str | None:
    """Why the trading states refuse a new position for `strategy` now; None: allowed."""
    eff = await effective_state(session, strategy.name)
    refusal = state_refusal(eff.state, eff.scope, opens=True)
    return refusal.message if refusal is not None else None
