"""Routing an authenticated, valid, deduplicated alert (under the strategy-and-symbol lock):
an exit reaches the open trades found in PostgreSQL, an open or a reverse records its trade,
and a delivery of an alert already accepted becomes a duplicate of it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Strategy
from trading.errors import show
from trading.exits import ExitPlan, TakeProfit, Trailing
from trading.partial import share_oldest_first
from trading.types import Intent, PositionSide, SignalOutcome, StopType
from webhook import queries, risk_gate
from webhook.intent import REVERSES
from webhook.plans import ClosePlan, DuplicatePlan, Plan, Refused, Settled, StartPlan
from webhook.queries import Delivery, KeyHolder, LatestExits, OpenTradeRow
from webhook.schemas import Alert, TrailPrice
from workflows.contract import (
    Sizing,
    StrategySnapshot,
    TradeInput,
    workflow_id_for,
    workflow_id_prefix,
)
from workflows.messages import CloseRequest

_OPPOSITE = {PositionSide.LONG: PositionSide.SHORT, PositionSide.SHORT: PositionSide.LONG}


def side_of(intent: Intent) -> PositionSide:
    """The position side an intent opens or closes (a reverse: the side it opens)."""
    return (
        PositionSide.LONG
        if intent in (Intent.OPEN_LONG, Intent.REVERSE_TO_LONG, Intent.CLOSE_LONG)
        else PositionSide.SHORT
    )


def _not_newer(
    trades: list[OpenTradeRow], time: datetime | None
) -> tuple[list[OpenTradeRow], list[OpenTradeRow]]:
    """(trades this alert may close, trades opened by a later alert than this one)."""
    if time is None:
        return trades, []
    newer = [t for t in trades if t.alert_time is not None and t.alert_time > time]
    return [t for t in trades if t not in newer], newer


async def close(
    session: AsyncSession, d: Delivery, strategy: Strategy, alert: Alert, note: str | None = None,
    part: tuple[Decimal | None, Decimal | None] | None = None,
) -> Plan:
    """`note`: why this exit is what remains of the alert (a reverse under REDUCE_ONLY keeps
    its close half only: decide.py); kept in the signal's reason and the answer's. `part`: a
    partial exit (webhook/intent.py exit_part), (base qty, None) or (None, pct); None closes
    everything. A percent applies to each open trade; a base quantity closes the oldest first
    (docs/design.md#exits)."""
    side = side_of(d.intent)
    targets, newer = _not_newer(
        await queries.open_trades(session, strategy.id, d.symbol, side), alert.time
    )
    if not targets:
        if newer:
            raise Refused(
                422,
                f"stale exit: the open {side.value.lower()} trade #{newer[0].id} comes from a later "
                f"alert ({newer[0].alert_time.isoformat()}) than this exit's time "
                f"{alert.time.isoformat()} (delivered out of order); nothing closed",
            )
        reason = (
            f"nothing to close: no open {side.value.lower()} trade of {strategy.name} on {d.symbol}"
        ) + (f"; {note}" if note else "")
        signal_id = await queries.insert_signal(session, d, SignalOutcome.NOTHING_TO_CLOSE, reason)
        return Settled(
            200,
            {
                "outcome": SignalOutcome.NOTHING_TO_CLOSE.value,
                "reason": reason,
                "signal_id": signal_id,
            },
        )
    signal_id = await queries.claim_key(session, d)
    if signal_id is None:
        return await duplicate(
            session, d, strategy, await _holder_after_conflict(session, d, strategy)
        )
    request = CloseRequest(reason=f"exit alert (signal #{signal_id})", signal_id=signal_id)
    shares: dict[int, Decimal] = {}
    if part is None:
        reason = "closing trade " + ", ".join(f"#{t.id}" for t in targets)
    elif part[1] is not None:
        request = request.model_copy(update={"pct": part[1]})
        reason = f"closing {show(part[1])} % of trade " + ", ".join(f"#{t.id}" for t in targets)
    else:
        assert part[0] is not None
        split = share_oldest_first(part[0], [t.open_qty for t in targets])
        targets, shares = ([t for t, q in zip(targets, split, strict=True) if q > 0],
                           {t.id: q for t, q in zip(targets, split, strict=True) if q > 0})
        request = request.model_copy(update={"qty": part[0]})
        reason = "closing " + ", ".join(f"{show(shares[t.id])} of trade #{t.id}" for t in targets)
    if note:
        reason += f"; {note}"
    await queries.set_signal(session, signal_id, workflow_id=targets[0].workflow_id, reason=reason)
    return ClosePlan(signal_id, targets, request, note, shares)


async def open_(
    session: AsyncSession,
    d: Delivery,
    strategy: Strategy,
    alert: Alert,
    holder: KeyHolder | None,
    exits: LatestExits,
    *,
    queue_start: bool = False,
) -> Plan:
    """`exits`: the newest exit times recorded for this strategy and symbol, read under the
    lock (queries.key_holder_and_latest_exit). An open older than an exit is stale; so is one
    of the same second as an exit that found nothing to close (`{{timenow}}` has whole seconds:
    that exit was this open's, delivered first)."""
    if alert.time is not None and (
        (exits.any is not None and alert.time < exits.any)
        or (exits.empty is not None and alert.time == exits.empty)
    ):
        last_exit = exits.empty if alert.time == exits.empty else exits.any
        assert last_exit is not None
        raise Refused(
            422,
            f"stale open: an exit alert for {strategy.name} on {d.symbol} at "
            f"{last_exit.isoformat()} is already recorded and this alert's time "
            f"{alert.time.isoformat()} is not newer (delivered out of order); nothing opened",
        )
    if holder is not None:  # accepted earlier, but Temporal never took it: start it now
        await queries.insert_signal(
            session,
            d,
            SignalOutcome.DUPLICATE,
            f"redelivery of signal #{holder.signal_id}, which Temporal had not started: starting it",
            workflow_id=holder.workflow_id,
        )
        await queries.set_signal(
            session, holder.signal_id, outcome=SignalOutcome.ACCEPTED.value, reason=None
        )
        return await plan_start(session, strategy, holder, eager=False)
    claimed = await queries.claim_open(
        session,
        d,
        workflow_id_prefix(strategy.name),
        side=side_of(d.intent).value,
        entry_type=alert.order_type.value if alert.order_type else strategy.entry_type,
        leverage=alert.leverage,
        tp_price=alert.tp,
        sl_price=alert.sl,
        outcome=SignalOutcome.QUEUED if queue_start else SignalOutcome.ACCEPTED,
    )
    if claimed is None:
        return await duplicate(
            session, d, strategy, await _holder_after_conflict(session, d, strategy)
        )
    # The statement built the id from the prefix: it must be the contract's.
    assert claimed.workflow_id == workflow_id_for(strategy.name, claimed.signal_id)
    accepted = KeyHolder(
        claimed.signal_id,
        (SignalOutcome.QUEUED if queue_start else SignalOutcome.ACCEPTED).value,
        claimed.workflow_id,
        d.intent.value,
        d.symbol,
        d.body,
        d.received_at,
        claimed.trade_id,
        None,
    )
    plan = await plan_start(session, strategy, accepted, eager=not queue_start, alert=alert)
    plan.queued = queue_start
    return plan


async def plan_start(
    session: AsyncSession,
    strategy: Strategy,
    holder: KeyHolder,
    *,
    eager: bool,
    alert: Alert | None = None,
) -> StartPlan:
    """The input of the trade `holder` accepted (its stored body when `alert` is not given).
    A reverse closes every opposite trade of the strategy on the symbol (pyramiding can leave
    several) before it enters: the new workflow signals each and waits until all have closed
    (docs/design.md#reverses). The newest goes in `close_first_workflow_id`, as it always did,
    the older ones in `also_close_first_workflow_ids`."""
    assert holder.trade_id is not None and holder.workflow_id is not None
    assert holder.intent is not None and holder.symbol is not None
    alert = alert or holder_alert(holder)
    intent, symbol = Intent(holder.intent), holder.symbol
    trade_intent, close_first, also_close_first = intent, None, ()
    if intent in REVERSES:
        opposite = await queries.open_trades(session, strategy.id, symbol, _OPPOSITE[side_of(intent)])
        targets, _ = _not_newer(opposite, alert.time)  # oldest first
        if targets:
            close_first = targets[-1].workflow_id
            also_close_first = tuple(t.workflow_id for t in reversed(targets[:-1]))
        else:  # nothing to reverse: a plain open
            trade_intent = (
                Intent.OPEN_LONG if intent is Intent.REVERSE_TO_LONG else Intent.OPEN_SHORT
            )
    inp = TradeInput(
        trade_id=holder.trade_id,
        signal_id=holder.signal_id,
        strategy=snapshot(strategy),
        symbol=symbol,
        intent=trade_intent,
        sizing=_sizing(alert, intent),
        entry_type=alert.order_type,
        reference_price=alert.price,
        leverage=alert.leverage,
        tp=alert.tp,
        sl=alert.sl,
        tp_pct=alert.tp_pct,
        sl_pct=alert.sl_pct,
        exits=exit_plan(alert, snapshot(strategy).exits),
        alert_time=alert.time,
        received_at=holder.received_at,
        close_first_workflow_id=close_first,
        also_close_first_workflow_ids=also_close_first,
        client_id_namespace=await queries.install_id(session),
    )
    return StartPlan(holder.signal_id, holder.trade_id, holder.workflow_id, inp, eager)


def exit_plan(alert: Alert, default: ExitPlan | None) -> ExitPlan | None:
    """The trade's exit plan (docs/design.md#exits): the alert's ladder, else the strategy's
    unless the alert gives a single tp/tp_pct; the alert's `sl_after_tp` over either ladder's;
    the alert's trailing stop, else the strategy's. None when nothing is asked."""
    default = default or ExitPlan()
    if alert.tps is not None:
        levels = tuple(TakeProfit(price=t.price, pct=t.pct, qty_pct=t.qty_pct) for t in alert.tps)
    elif alert.tp is None and alert.tp_pct is None:
        levels = default.tps
    else:
        levels = ()
    after = alert.sl_after_tp
    if after is not None:
        afters = after if isinstance(after, list) else [after] * len(levels)
        levels = tuple(t.model_copy(update={"sl_after": a})
                       for t, a in zip(levels, afters, strict=True))
    trail = default.trail
    if alert.trail_pct is not None:
        trail = Trailing(
            pct=alert.trail_pct, activation_pct=alert.trail_activation_pct,
            activation_price=alert.trail_activation_price,
            price_type=None if alert.trail_price is None else _TRAIL_PRICES[alert.trail_price],
        )
    plan = ExitPlan(tps=levels, trail=trail)
    return None if plan.empty else plan


_TRAIL_PRICES = {TrailPrice.MARK: StopType.MARK_PRICE, TrailPrice.LAST: StopType.LAST_PRICE}


def _sizing(alert: Alert, intent: Intent) -> Sizing | None:
    """The alert's sizing, or None for the strategy's. A reverse's `size` is TradingView's
    old-plus-new contracts, so a reverse is sized by `market_position_size` instead."""
    if intent in REVERSES:
        if alert.market_position_size is not None and alert.market_position_size > 0:
            return Sizing(size=alert.market_position_size)
        if any(v is not None for v in (alert.size_usdt, alert.size_pct, alert.risk_pct)):
            return Sizing(size_usdt=alert.size_usdt, size_pct=alert.size_pct,
                          risk_pct=alert.risk_pct)
        return None
    if all(v is None for v in (alert.size, alert.size_usdt, alert.size_pct, alert.risk_pct)):
        return None
    return Sizing(size=alert.size, size_usdt=alert.size_usdt, size_pct=alert.size_pct,
                  risk_pct=alert.risk_pct)


def sizing_used(alert: Alert, intent: Intent, strategy: Strategy) -> Sizing:
    """The sizing the trade will use: the alert's, else the strategy's default."""
    return _sizing(alert, intent) or snapshot(strategy).sizing


def snapshot(strategy: Strategy) -> StrategySnapshot:
    """The strategy's parameters now, for the trade to keep (docs/design.md#strategy-snapshot):
    the row, validated once by the model every side uses."""
    return StrategySnapshot.model_validate(strategy, from_attributes=True)


def holder_alert(holder: KeyHolder) -> Alert:
    """The alert an earlier signal stored (its body has no secret: a placeholder fills in)."""
    return Alert.model_validate({**(holder.body or {}), "secret": "-"})


async def _holder_after_conflict(
    session: AsyncSession, d: Delivery, strategy: Strategy
) -> KeyHolder:
    holder = await queries.key_holder(
        session, strategy.id, d.dedupe_key or "", False, 0, d.received_at
    )
    assert holder is not None, "the unique index reported a holder that is not there"
    return holder


async def duplicate(
    session: AsyncSession, d: Delivery, strategy: Strategy, holder: KeyHolder
) -> DuplicatePlan:
    signal_id = await queries.insert_signal(
        session,
        d,
        SignalOutcome.DUPLICATE,
        f"duplicate of signal #{holder.signal_id}",
        workflow_id=holder.workflow_id,
    )
    restart = None
    if (holder.trade_id is not None and holder.trade_status == "PENDING"
            and await risk_gate.opening_refusal(session, strategy) is None):
        # Maybe never started (a crash between commit and start): starting again is harmless,
        # the reject-duplicate policy turns it into "already started". Not while the states
        # refuse opening: the outbox then ends it with the reason.
        restart = await plan_start(session, strategy, holder, eager=False)
    return DuplicatePlan(signal_id, holder, restart)

