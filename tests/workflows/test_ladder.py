"""The take-profit ladder (docs/design.md#exits) on real parts: each level a reduce-only limit
order of the trade's own quantity, the stop (the TP/SL order, SL only) sized to what is left
and moved after a level fills; two trades on one symbol each keep exits of their own quantity
only, in one-way and hedge mode."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowUpdateFailedError

from activities.contract_tracking import ExchangeChanged
from tests.support.paper import PaperExchange, run_paper_exchange
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness, strategy, until
from trading.exits import DEFAULT_TAKER_FEE_RATE, ExitPlan, SlAfterTp, TakeProfit, breakeven
from trading.types import (
    EntryType,
    Intent,
    OnProtectionRefused,
    OrderType,
    PositionMode,
    Side,
    TradeStatus,
)
from workflows.contract import Sizing
from workflows.messages import CancelRequest, ExitsUpdate
from workflows.state import TradeState
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
TICK = Decimal("0.1")
D = Decimal


def ladder(after: SlAfterTp = SlAfterTp.BREAKEVEN) -> ExitPlan:
    """The issue's ladder: 1 % for half, 2 % for 30 %, 4 % for the rest."""
    return ExitPlan(tps=(TakeProfit(pct=D(1), qty_pct=D(50), sl_after=after),
                         TakeProfit(pct=D(2), qty_pct=D(30), sl_after=after),
                         TakeProfit(pct=D(4), sl_after=after)))


def on_tick(price: Decimal, up: bool) -> Decimal:
    rounding = ROUND_CEILING if up else "ROUND_FLOOR"
    return (price / TICK).to_integral_value(rounding=rounding) * TICK


def level_prices(entry: Decimal, long: bool = True) -> list[Decimal]:
    """A long's sell limits round up to the tick, a short's buy limits down."""
    sign = 1 if long else -1
    return [on_tick(entry * (100 + sign * pct) / 100, long) for pct in (1, 2, 4)]


def laddered(s: TradeState) -> bool:
    return (s.status is TradeStatus.TRACKING and s.protection.order_id is not None
            and s.exits is not None and [lv.status for lv in s.exits.levels] == ["working"] * 3)


def levels_filled(n: int, stop: Decimal | None = None):
    """The first `n` levels filled (and the stop at `stop`, if given); an order-level stop
    sized to what the trade still owns (a position-level one covers the whole position)."""
    def check(s: TradeState) -> bool:
        return s.exits is not None and \
            [lv.status for lv in s.exits.levels][:n] == ["filled"] * n and \
            (stop is None or s.protection.sl == stop) and (
                s.protection.level == "position"
                or s.protection.qty == s.filled_qty - s.closed_qty)
    return check


async def working_orders(h: Harness, client_prefix: str | None = None) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) of the reduce-only orders resting at the exchange."""
    orders = await h.exchange.pending_orders(BTC)
    return sorted((o.price, o.qty) for o in orders if o.reduce_only
                  and (client_prefix is None or (o.client_id or "").startswith(client_prefix)))


async def stops(h: Harness) -> list[tuple[Decimal | None, Decimal | None, Decimal | None]]:
    """(tp, sl, sl qty) of every TP/SL pending at the exchange."""
    return sorted(((t.tp_price, t.sl_price, t.sl_qty)
                   for t in await h.exchange.pending_tpsl_orders(BTC)), key=str)


async def test_a_three_level_ladder_fills_level_by_level_and_the_stop_follows(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder())
    st = await h.until_state(handle, laddered, "three levels working")
    entry = st.avg_entry_price
    assert entry is not None and st.filled_qty == QTY
    p1, p2, p3 = level_prices(entry)
    assert [(lv.price, lv.qty) for lv in st.exits.levels] == [
        (p1, D("0.0050")), (p2, D("0.0030")), (p3, D("0.0020"))]
    assert await working_orders(h) == [(p1, D("0.0050")), (p2, D("0.0030")), (p3, D("0.0020"))]
    # The TP/SL carries only the stop, for the whole quantity.
    assert st.protection.tp is None and st.protection.sl == D("90000")
    assert [(tp, sl) for tp, sl, _ in await stops(h)] == [(None, D("90000"))]

    be = on_tick(breakeven(entry, DEFAULT_TAKER_FEE_RATE, True), up=True)
    await h.paper.admin.set_price(BTC, str(p1))  # level 1 fills as maker
    st = await h.until_state(handle, levels_filled(1, be), "level 1 filled, stop moved")
    assert st.closed_qty == D("0.0050") and st.protection.level == "position"  # owns it all
    assert st.protection.sl == be and st.exits.stop == be  # break-even, fees included
    assert [lv.filled_qty for lv in st.exits.levels] == [D("0.0050"), 0, 0]
    assert await working_orders(h) == [(p2, D("0.0030")), (p3, D("0.0020"))]
    assert [sl for _, sl, _ in await stops(h)] == [be]

    await h.paper.admin.set_price(BTC, str(p2))
    st = await h.until_state(handle, levels_filled(2), "level 2 filled")
    assert st.closed_qty == D("0.0080") and await h.position_qty() == D("0.0020")
    assert st.protection.sl == be  # break-even is as far as this ladder moves it
    assert await working_orders(h) == [(p3, D("0.0020"))]

    await h.paper.admin.set_price(BTC, str(p3))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    hand = D("0.0050") * (p1 - entry) + D("0.0030") * (p2 - entry) + D("0.0020") * (p3 - entry)
    assert result.realized_pnl == hand
    assert await h.exchange.pending_orders(BTC) == []
    assert await h.exchange.pending_tpsl_orders(BTC) == []
    assert await h.position_qty() == 0
    legs = [(o.leg, o.filled_qty) for o in await h.orders(result.trade_id) if o.leg != "protection"]
    assert legs == [("entry", QTY), ("take_profit", D("0.0050")), ("take_profit", D("0.0030")),
                    ("take_profit", D("0.0020"))]
    await h.keep_history(handle, "ladder_three_levels")


def other_ladder() -> ExitPlan:
    return ExitPlan(tps=(TakeProfit(pct=D(3), qty_pct=D(50)), TakeProfit(pct=D(5))))


async def resting_of(h: Harness, trade_id: int) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) of the trade's own orders resting at the exchange (by client id)."""
    mine = {o.client_order_id for o in await h.orders(trade_id)}
    return sorted((o.price, o.qty) for o in await h.exchange.pending_orders(BTC)
                  if o.client_id in mine)


@pytest.mark.parametrize("mode", [PositionMode.ONE_WAY, PositionMode.HEDGE])
async def test_two_trades_on_one_symbol_each_keep_exits_of_their_own_quantity(
    harness: Harness, mode: PositionMode,
) -> None:
    """A and B are long 0.01 each on one position. Each has its own ladder and an order-level
    stop of its own 0.01. A's first level fills and its stop moves to break-even for its 0.005
    left; then A's stop fires: A's two levels left are cancelled at once (resting reduce-only,
    they would close B's quantity in one-way mode), and B's quantity, levels and stop are
    untouched."""
    h = harness
    if mode is PositionMode.HEDGE:
        await h.exchange.change_position_mode(PositionMode.HEDGE)
    await h.paper.admin.set_price(BTC, "95000")
    a = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder())
    st_a = await h.until_state(a, laddered, "A's ladder working")
    b = await h.trade(sizing=Sizing(size=QTY), sl=D("91000"), exits=other_ladder())
    st_b = await h.until_state(
        b, lambda s: s.protection.order_id is not None and s.exits is not None
        and [lv.status for lv in s.exits.levels] == ["working"] * 2, "B's ladder working")
    # A's stop goes order-level once B shares the position.
    st_a = await h.until_state(a, lambda s: s.protection.level == "order", "A's stop order-level")
    assert st_a.position_mode is mode and await h.position_qty() == 2 * QTY
    a_prices = level_prices(st_a.avg_entry_price)
    b_entry = st_b.avg_entry_price
    b_prices = [on_tick(b_entry * 103 / 100, True), on_tick(b_entry * 105 / 100, True)]
    b_levels = [(b_prices[0], D("0.0050")), (b_prices[1], D("0.0050"))]
    assert await resting_of(h, st_a.trade_id) == list(zip(a_prices, (D("0.0050"), D("0.0030"), D("0.0020")), strict=True))
    assert await resting_of(h, st_b.trade_id) == b_levels
    assert await stops(h) == [(None, D("90000"), QTY), (None, D("91000"), QTY)]

    be = on_tick(breakeven(st_a.avg_entry_price, DEFAULT_TAKER_FEE_RATE, True), up=True)
    await h.paper.admin.set_price(BTC, str(a_prices[0]))  # A's level 1 (B's are higher)
    st_a = await h.until_state(a, levels_filled(1, be), "A's level 1 filled, its stop moved")
    assert st_a.protection.qty == D("0.0050") and st_a.protection.level == "order"
    assert await stops(h) == [(None, D("91000"), QTY), (None, be, D("0.0050"))]
    assert await resting_of(h, st_b.trade_id) == b_levels

    await h.paper.admin.set_price(BTC, str(be - 10))  # A's stop fires, B's (91000) does not
    result = await h.result(a)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await resting_of(h, st_a.trade_id) == []  # A's levels 2 and 3 cancelled
    rows = await h.orders(result.trade_id)
    # Level 1 filled its 0.005; every other level order ended cancelled with nothing filled
    # (levels 2 and 3, and any placed again while the stop's fate was being asked); the stop
    # closed the other 0.005.
    levels = [(o.status, o.filled_qty) for o in rows if o.leg == "take_profit"]
    assert levels[0] == ("FILLED", D("0.0050")) and len(levels) >= 3
    assert all(lv == ("CANCELED", 0) for lv in levels[1:]), levels
    assert [(o.leg, o.status, o.filled_qty) for o in rows if o.leg in ("triggered", "external")
            ] == [("triggered", "FILLED", D("0.0050"))]
    assert await h.position_qty() == QTY  # B's, untouched

    async def b_stop_settled() -> TradeState | None:
        # Alone on the position now, B may move its stop to position-level at its next check
        # (cancel, then place): read until the exchange shows what B's state says.
        st = await h.state(b)
        want = [(None, D("91000"), None if st.protection.level == "position" else QTY)]
        return st if await stops(h) == want else None

    st_b = await until(b_stop_settled, "B's one stop, as its state says")
    assert st_b.status is TradeStatus.TRACKING and st_b.closed_qty == 0
    assert await resting_of(h, st_b.trade_id) == b_levels

    await b.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(b)).status is TradeStatus.CANCELLED
    assert await h.exchange.pending_orders(BTC) == []
    assert await h.exchange.pending_tpsl_orders(BTC) == []
    assert await h.position_qty() == 0
    if mode is PositionMode.ONE_WAY:
        await h.keep_history(a, "ladder_two_trades_stop_fires")


async def test_a_stop_after_a_take_profit_already_crossed_closes_the_rest_at_market(
    harness: Harness,
) -> None:
    """The price reaches level 1 and falls back below break-even before the trade looks (its
    timer is an hour, no watcher): the stop it now wants lies above the price, which the
    exchange would refuse and which would have fired. The trade closes the rest at market
    (never tracked with a stop it cannot place, nor left with the old one)."""
    h = harness
    quiet = strategy("quiet", tracking_interval_s=3600,
                     on_protection_refused=OnProtectionRefused.WARN)
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder(), strat=quiet)
    st = await h.until_state(handle, laddered, "three levels working")
    p1 = level_prices(st.avg_entry_price)[0]
    await h.paper.admin.set_price(BTC, str(p1))  # level 1 fills at the exchange
    await h.paper.admin.set_price(BTC, "95000")  # and the price falls back below break-even
    await handle.signal(ExchangeChanged.SIGNAL, ExchangeChanged(reason="test"))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    legs = [(o.leg, o.filled_qty) for o in await h.orders(result.trade_id)
            if o.leg not in ("protection", "entry") and o.filled_qty > 0]
    assert legs == [("take_profit", D("0.0050")), ("flatten", D("0.0050"))]
    row = await h.trade_row(handle)
    assert "stop after a take-profit" in (row.warning or "")
    assert await h.exchange.pending_orders(BTC) == []
    assert await h.exchange.pending_tpsl_orders(BTC) == []
    assert await h.position_qty() == 0


@pytest_asyncio.fixture(loop_scope="session")
async def partial_paper() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_partial_fills=True,
                                  paper_rate_limit_scale=RATE_SCALE) as exchange:
        yield exchange


async def test_partial_fills_of_the_entry_resize_the_ladder(
    temporal_client: Client, partial_paper: PaperExchange, wf_db, task_queue: str,
) -> None:
    """A limit entry fills half, then the rest: the ladder is placed for the half at once
    (shares of what filled) and resized (cancelled, placed again) for the whole."""
    async with running_harness(temporal_client, partial_paper, wf_db, task_queue) as h:
        await h.paper.admin.set_price(BTC, "95000")
        handle = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=QTY),
                               reference_price=D("94000"), sl=D("90000"), exits=ladder())
        await h.until_state(handle, lambda s: s.open_orders, "the limit entry rests")
        await h.paper.admin.set_price(BTC, "94000")  # half of it fills
        half = QTY / 2
        st = await h.until_state(handle, lambda s: s.filled_qty == half and s.exits is not None
                                 and [lv.status for lv in s.exits.levels] == ["working"] * 3,
                                 "the ladder for the half")
        assert st.status is TradeStatus.ENTERING
        prices = level_prices(D("94000"))
        assert await working_orders(h) == list(zip(
            prices, (D("0.0025"), D("0.0015"), D("0.0010")), strict=True))

        await h.paper.admin.set_price(BTC, "93990")  # the rest fills
        whole = [D("0.0050"), D("0.0030"), D("0.0020")]
        st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                                 and s.exits is not None
                                 and [lv.qty for lv in s.exits.levels] == whole
                                 and [lv.status for lv in s.exits.levels] == ["working"] * 3,
                                 "the ladder resized for the whole")
        assert await working_orders(h) == list(zip(prices, whole, strict=True))
        assert st.protection.sl == D("90000") and st.protection.tp is None
        await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
        result = await h.result(handle)
        assert result.status is TradeStatus.CANCELLED and result.closed_qty == QTY
        assert await h.exchange.pending_orders(BTC) == []
        assert await h.exchange.pending_tpsl_orders(BTC) == []
        assert await h.position_qty() == 0
        rows = [(o.leg, o.status) for o in await h.orders(result.trade_id)
                if o.leg == "take_profit"]
        assert rows == [("take_profit", "CANCELED")] * 6  # three for the half, three again


@pytest.mark.parametrize("mode", ["http_504", "hang"])
async def test_a_dropped_level_answer_is_adopted_never_placed_twice(harness: Harness,
                                                                    mode: str) -> None:
    """The first level's placement is executed but its answer lost: the level's order is
    found by its client id and adopted; the exchange never holds a second order for it."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=QTY),
                           reference_price=D("94000"), sl=D("90000"), exits=ladder())
    await h.until_state(handle, lambda s: s.open_orders, "the limit entry rests")
    await h.paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": mode})
    await h.paper.admin.set_price(BTC, "94000")  # the entry fills; level 1's answer is lost
    st = await h.until_state(handle, laddered, "three levels working", timeout_s=90)
    created = [o for o in (await h.paper.admin.state())["orders"]
               if o["source"] == "api" and o["reduceOnly"]]
    assert len(created) == 3, created  # every reduce-only order the exchange ever accepted
    assert await working_orders(h) == list(zip(
        level_prices(D("94000")), (D("0.0050"), D("0.0030"), D("0.0020")), strict=True))
    rows = [o for o in await h.orders(st.trade_id) if o.leg == "take_profit"]
    assert sorted(o.client_order_id for o in rows) == sorted(c["clientId"] for c in created)


async def test_a_short_ladder_moves_its_stop_to_the_previous_level(harness: Harness) -> None:
    """A short with `previous_tp`: break-even (below the entry, fees included) after level 1,
    level 1's price after level 2; its buy limits round down to the tick."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY), sl=D("99000"),
                           exits=ladder(SlAfterTp.PREVIOUS_TP))
    st = await h.until_state(handle, laddered, "three levels working")
    entry = st.avg_entry_price
    p1, p2, p3 = level_prices(entry, long=False)
    assert await working_orders(h) == sorted([(p1, D("0.0050")), (p2, D("0.0030")),
                                              (p3, D("0.0020"))])
    be = on_tick(breakeven(entry, DEFAULT_TAKER_FEE_RATE, False), up=False)
    assert be < entry
    await h.paper.admin.set_price(BTC, str(p1))
    await h.until_state(handle, levels_filled(1, be), "level 1 filled, stop at break-even")
    await h.paper.admin.set_price(BTC, str(p2))
    st = await h.until_state(handle, levels_filled(2, p1), "level 2 filled, stop at level 1")
    assert [sl for _, sl, _ in await stops(h)] == [p1]
    await h.paper.admin.set_price(BTC, str(p3))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    hand = D("0.0050") * (entry - p1) + D("0.0030") * (entry - p2) + D("0.0020") * (entry - p3)
    assert result.realized_pnl == hand
    assert await h.exchange.pending_orders(BTC) == []
    assert await h.position_qty(side="SHORT") == 0


async def test_resting_levels_do_not_multiply_the_checks_requests(harness: Harness) -> None:
    """A check of a trade with three resting levels reads them from the pending-orders list
    (one read per symbol, shared), not with an order detail each."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder())
    await h.until_state(handle, laddered, "three levels working")
    since = time.time_ns()

    async def checks() -> list[dict] | None:
        reqs = await h.paper.admin.requests(since)
        positions = [r for r in reqs if r["path"].endswith("get_pending_positions")]
        return reqs if len(positions) >= 5 else None

    reqs = await until(checks, "five checks on the trade's timer")
    details = [r for r in reqs if r["path"].endswith("trade/get_order_detail")]
    lists = [r for r in reqs if r["path"].endswith("trade/get_pending_orders")]
    assert details == [] and lists, [r["path"] for r in reqs]


async def test_a_partial_close_from_outside_is_recorded_while_levels_rest(
    harness: Harness,
) -> None:
    """Part of the position is closed by hand in the app while the levels rest: its fills
    (no client id of ours) are recorded as the trade's external close, and the levels are
    cut to what the trade still owns (the far ones first); a level's own fill never is (its
    fills carry our client id)."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder())
    st = await h.until_state(handle, laddered, "three levels working")
    p1, p2, p3 = level_prices(st.avg_entry_price)
    await h.exchange.place_order(symbol=BTC, side=Side.SELL, qty=D("0.0040"),
                                 order_type=OrderType.MARKET, reduce_only=True)
    st = await h.until_state(handle, lambda s: s.closed_qty == D("0.0040")
                             and sum(o.qty for o in s.open_orders) == D("0.0060"),
                             "the manual close recorded, the levels cut")
    # The ladder shares out what other closes left: 0.006 → 0.003 / 0.0018 / the rest.
    assert await working_orders(h) == [(p1, D("0.0030")), (p2, D("0.0018")), (p3, D("0.0012"))]
    legs = [(o.leg, o.filled_qty) for o in await h.orders(st.trade_id) if o.leg == "external"]
    assert legs == [("external", D("0.0040"))]
    await h.paper.admin.set_price(BTC, str(p3))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0 and await h.exchange.pending_orders(BTC) == []
    await h.keep_history(handle, "ladder_partial_close_outside")


async def test_after_a_level_filled_an_update_keeps_it_and_the_stop_it_moved(
    harness: Harness,
) -> None:
    """A new ladder may not change a level that filled (its fill and stop move are that
    level's), and removing the ladder after a fill keeps the stop where the fill moved it."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("90000"), exits=ladder())
    st = await h.until_state(handle, laddered, "three levels working")
    entry = st.avg_entry_price
    p1, _, _ = level_prices(entry)
    be = on_tick(breakeven(entry, DEFAULT_TAKER_FEE_RATE, True), up=True)
    await h.paper.admin.set_price(BTC, str(p1))
    await h.until_state(handle, levels_filled(1, be), "level 1 filled, stop at break-even")

    other = (TakeProfit(pct=D(3), qty_pct=D(50)), TakeProfit(pct=D(5)))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(tps=other))
    assert "level 1 has filled" in str(refused.value.cause)
    moved = await handle.execute_update(TradeWorkflow.set_exits, ExitsUpdate(remove=("tps",)))
    assert moved.plan is None and moved.protection.sl == be  # not back to 90000
    assert [sl for _, sl, _ in await stops(h)] == [be]
    assert await working_orders(h) == []  # the levels left with the ladder
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0
