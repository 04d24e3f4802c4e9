"""Update `set_exits` (docs/design.md#exits): the merge of a move over the trade's plan (pure,
field by field), the plan's lines in the Temporal UI details, and on real parts: its validator
refuses a move before it is accepted (the trade's history has no accepted update after a
refusal, and nothing at the exchange changed); an accepted move replaces the plan field by
field and moves the stop."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from tests.workflows.harness import Harness, strategy
from trading.exits import ExitPlan, SlAfterTp, TakeProfit, Trailing
from trading.types import PositionSide, StopType, TradeStatus
from workflows.contract import Sizing
from workflows.exits_update import ExitsAnswer, ExitsRefused, merged_levels, merged_trail
from workflows.messages import CancelRequest, ExitsUpdate, TradeMessages
from workflows.state import ExitsView, LevelView, TradeState, TrailView
from workflows.summary import details
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
UPDATE_EVENTS = (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                 EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)


pcts = st.decimals(min_value="0.01", max_value="50", places=2)
afters = st.sampled_from(list(SlAfterTp))
levels = st.lists(st.builds(TakeProfit, pct=pcts, sl_after=afters), max_size=6).map(tuple)
trails = st.none() | st.builds(Trailing, pct=pcts, activation_pct=st.none() | pcts,
                               price_type=st.none() | st.sampled_from(list(StopType)))


@given(levels=levels, trail=trails)
def test_a_move_keeps_what_it_leaves_out(levels, trail) -> None:
    plan = ExitPlan(tps=levels, trail=trail)
    assert merged_levels(plan, ExitsUpdate(sl=Decimal(1))) == levels
    assert merged_trail(trail, ExitsUpdate(sl=Decimal(1), tps=(TakeProfit(pct=Decimal(1)),))) == trail
    assert merged_levels(plan, ExitsUpdate(remove=("tps",))) == ()
    assert merged_levels(plan, ExitsUpdate(tp=Decimal(9))) == ()  # one TP instead of a ladder
    assert merged_trail(trail, ExitsUpdate(remove=("trail",))) is None


@given(old=levels, new=st.lists(st.builds(TakeProfit, pct=pcts), min_size=1, max_size=6))
def test_a_new_ladder_keeps_each_rungs_stop_move_unless_given(old, new) -> None:
    got = merged_levels(ExitPlan(tps=old), ExitsUpdate(tps=tuple(new)))
    assert [t.pct for t in got] == [t.pct for t in new]
    assert [t.sl_after for t in got] == [old[i].sl_after if i < len(old) else SlAfterTp.NONE
                                         for i in range(len(new))]
    moved = merged_levels(ExitPlan(tps=old), ExitsUpdate(tps=tuple(new),
                                                         sl_after_tp=SlAfterTp.BREAKEVEN))
    assert {t.sl_after for t in moved} == {SlAfterTp.BREAKEVEN}


def test_sl_after_tp_needs_a_ladder_and_one_value_per_level() -> None:
    two = ExitPlan(tps=(TakeProfit(pct=Decimal(1)), TakeProfit(pct=Decimal(2))))
    got = merged_levels(two, ExitsUpdate(sl_after_tp=(SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP)))
    assert [t.sl_after for t in got] == [SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP]
    with pytest.raises(ExitsRefused, match="one entry per tps level"):
        merged_levels(two, ExitsUpdate(sl_after_tp=(SlAfterTp.BREAKEVEN,)))
    with pytest.raises(ExitsRefused, match="needs a take-profit ladder"):
        merged_levels(ExitPlan(), ExitsUpdate(sl_after_tp=SlAfterTp.BREAKEVEN))


def test_a_trail_moves_field_by_field_and_one_activation_replaces_the_other() -> None:
    old = Trailing(pct=Decimal(2), activation_pct=Decimal(1), price_type=StopType.MARK_PRICE)
    assert merged_trail(old, ExitsUpdate(trail_pct=Decimal(3))) == old.model_copy(
        update={"pct": Decimal(3)})
    assert merged_trail(old, ExitsUpdate(trail_activation_price=Decimal(100))) == Trailing(
        pct=Decimal(2), activation_price=Decimal(100), price_type=StopType.MARK_PRICE)
    assert merged_trail(None, ExitsUpdate(trail_pct=Decimal(1))) == Trailing(pct=Decimal(1))
    with pytest.raises(ExitsRefused, match="give trail_pct"):
        merged_trail(None, ExitsUpdate(trail_price=StopType.LAST_PRICE))
    with pytest.raises(ExitsRefused, match="pct"):
        merged_trail(old, ExitsUpdate(trail_pct=Decimal(100)))


def test_the_temporal_ui_details_list_each_level_the_stop_and_the_trails_best_price() -> None:
    state = TradeState(trade_id=1, symbol=BTC, side=PositionSide.LONG, exits=ExitsView(
        levels=[LevelView(price=Decimal("95950"), qty=Decimal("0.005"),
                          filled_qty=Decimal("0.005"), status="filled"),
                LevelView(price=Decimal("96900"), qty=Decimal("0.005"), status="working")],
        stop=Decimal("95057.1"),
        trail=TrailView(pct=Decimal("1.5"), active=True, best_price=Decimal("97000"),
                        stop=Decimal("95545"))))
    lines = details(state, "trend").splitlines()
    assert lines[3:6] == [
        "exits: stop 95057.1 · trail 1.5% active, best 97000 → stop 95545",
        "TP1 95950 × 0.005 · filled 0.005 · filled",
        "TP2 96900 × 0.005 · filled 0 · working",
    ]
    waiting = state.model_copy(update={"exits": ExitsView(trail=TrailView(pct=Decimal(2)))})
    assert "exits: stop - · trail 2% waiting for its activation" in details(waiting, "t")
    assert not any(line.startswith("exits:") for line in details(
        state.model_copy(update={"exits": None}), "t").splitlines())


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def update_events(handle: WorkflowHandle) -> list[EventType]:
    return [e.event_type async for e in handle.fetch_history_events()
            if e.event_type in UPDATE_EVENTS]


async def refused(handle: WorkflowHandle, upd: ExitsUpdate) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(TradeWorkflow.set_exits, upd)
    return str(err.value.cause)


async def test_set_exits_refuses_before_acceptance_and_moves_a_valid_plan(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    await h.until_state(handle, protected, "protected")

    assert "below the current price" in await refused(handle, ExitsUpdate(sl=Decimal("96000")))
    said = await refused(handle, ExitsUpdate(tps=(TakeProfit(price=Decimal("94000")),)))
    assert "take-profit level 1" in said and "above the current price" in said
    said = await refused(handle, ExitsUpdate(tps=(TakeProfit(pct=Decimal(1), qty_pct=Decimal(60)),
                                                  TakeProfit(pct=Decimal(2), qty_pct=Decimal(50)))))
    assert "more than 100 %" in said
    assert "needs a take-profit ladder" in await refused(
        handle, ExitsUpdate(sl_after_tp=SlAfterTp.BREAKEVEN))
    assert "give trail_pct" in await refused(
        handle, ExitsUpdate(trail_activation_pct=Decimal(1)))
    assert "give at least one" in await refused(handle, ExitsUpdate())
    # Nothing was accepted: no update event in the history, the plan and the TP/SL unchanged.
    assert await update_events(handle) == []
    before = await handle.query(TradeMessages.EXITS, result_type=ExitsAnswer)
    assert before.plan is None and before.protection.sl == Decimal("90000")
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("99000"), Decimal("90000"))

    # Accepted: the trail, then the stop (the trail is kept: what an update omits stays).
    moved = await handle.execute_update(
        TradeWorkflow.set_exits,
        ExitsUpdate(trail_pct=Decimal("1.5"), trail_activation_pct=Decimal(1),
                    trail_price=StopType.LAST_PRICE))
    trail = Trailing(pct=Decimal("1.5"), activation_pct=Decimal(1),
                     price_type=StopType.LAST_PRICE)
    assert moved.plan == ExitPlan(trail=trail)
    moved = await handle.execute_update(TradeWorkflow.set_exits,
                                        ExitsUpdate(sl=Decimal("92000.05")))
    assert moved.plan == ExitPlan(trail=trail)
    assert (moved.protection.tp, moved.protection.sl) == (Decimal("99000"), Decimal("92000.1"))
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("99000"), Decimal("92000.1"))
    row = await h.trade_row(handle)
    assert row.sl_price == Decimal("92000.1")  # on the tick
    # The trail's activation moved alone, then the trail removed.
    moved = await handle.execute_update(TradeWorkflow.set_exits,
                                        ExitsUpdate(trail_activation_price=Decimal("97000")))
    assert moved.plan == ExitPlan(trail=Trailing(pct=Decimal("1.5"),
                                                 activation_price=Decimal("97000"),
                                                 price_type=StopType.LAST_PRICE))
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(remove=("trail",)))
    assert moved.plan is None
    shown = (await h.state(handle)).exits  # a removed trail is not shown any more
    assert shown is None or shown.trail is None
    assert await update_events(handle) == list(UPDATE_EVENTS) * 4
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0
    await h.keep_history(handle, "set_exits")


async def test_a_ladder_replaces_the_single_tp_and_keeps_the_stop(h: Harness) -> None:
    """With a ladder, the TP/SL order carries the stop only (the levels are orders of their
    own, placed by the ladder's part of `protection.ensure`); `sl_after_tp` follows the levels."""
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    await h.until_state(handle, protected, "protected")
    levels = (TakeProfit(pct=Decimal(1), qty_pct=Decimal(50)), TakeProfit(price=Decimal("98000")))
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(
        tps=levels, sl_after_tp=(SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP)))
    assert [t.sl_after for t in moved.plan.tps] == [SlAfterTp.BREAKEVEN, SlAfterTp.PREVIOUS_TP]
    assert (moved.protection.tp, moved.protection.sl) == (None, Decimal("90000"))
    # A new ladder without sl_after_tp keeps each rung's.
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(
        tps=(TakeProfit(pct=Decimal(2)),)))
    assert moved.plan.tps == (TakeProfit(pct=Decimal(2), sl_after=SlAfterTp.BREAKEVEN),)
    # One TP again: the ladder goes.
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(tp=Decimal("98500")))
    assert moved.plan is None
    assert (moved.protection.tp, moved.protection.sl) == (Decimal("98500"), Decimal("90000"))
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("98500"), Decimal("90000"))
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED


async def test_a_move_the_exchange_refuses_puts_the_plan_and_the_stop_back(h: Harness) -> None:
    """The validator knows the price of the trade's last look (a quiet trade looks once an
    hour): the exchange, whose price has fallen since, refuses the new stop. The update then
    fails with the exchange's reason, and the trade's plan, stop and TP/SL are as before."""
    await h.paper.admin.freeze(BTC)
    await h.paper.admin.set_price(BTC, "95000")
    quiet = strategy("quiet", tracking_interval_s=3600)
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                           strat=quiet)
    await h.until_state(handle, protected, "protected")
    await h.paper.admin.set_price(BTC, "91500")  # the trade has not seen it
    said = await refused(handle, ExitsUpdate(sl=Decimal("92000"), trail_pct=Decimal(2)))
    # The exchange's words, not the validator's.
    assert "the exchange refused the TP/SL" in said and "code 30023" in said, said
    assert await update_events(handle) == [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
                                           EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
    now = await handle.query(TradeMessages.EXITS, result_type=ExitsAnswer)
    assert now.plan is None and (now.protection.tp, now.protection.sl) == (Decimal("99000"),
                                                                          Decimal("90000"))
    assert await tpsl_prices(h) == (Decimal("99000"), Decimal("90000"))
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


async def tpsl_prices(h: Harness) -> tuple[Decimal | None, Decimal | None]:
    [order] = await h.exchange.pending_tpsl_orders(BTC)
    return order.tp_price, order.sl_price


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def test_a_trail_added_to_a_quiet_trade_starts_at_once(h: Harness) -> None:
    """A trade that checks once an hour and gets a trail by update trails from then on, not
    from its next hourly check: the update wakes it onto the trail's cadence."""
    await h.paper.admin.set_price(BTC, "95000")
    quiet = strategy(tracking_interval_s=3600)
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"), strat=quiet)
    await h.until_state(handle, protected, "protected")
    await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(trail_pct=Decimal(1)))
    st = await h.until_state(
        handle, lambda s: s.exits is not None and s.exits.trail is not None
        and s.exits.trail.active and s.protection.sl == Decimal("94050"),
        "the trail active and the stop moved 1 % under the price")
    assert st.exits.trail.best_price == Decimal("95000")
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert tpsl.sl_price == Decimal("94050")
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
