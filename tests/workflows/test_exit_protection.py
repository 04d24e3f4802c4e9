"""The TP/SL of a trade that shares its position (order-level) during a chase or limit exit
(docs/design.md#protection, review finding 12): it stays at the exchange while the exit order
rests, follows the trade's quantity down as the exit fills (the same TP/SL, resized, never a
second one), goes once the exit has filled, and stays when the attempt fails. A TP/SL that
fires meanwhile stops the exit, so the two never close the trade's quantity twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus

from tests.support.paper import PaperExchange, run_paper_exchange
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness, strategy, until
from trading.types import EntryType, TradeStatus
from workflows import closing
from workflows.contract import Sizing
from workflows.messages import CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
ASK = Decimal("95000.1")  # the best ask at price 95000: where a long's post-only exit rests


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


def exit_failing(s) -> bool:
    return (s.status is TradeStatus.TRACKING and "exit failing" in s.phase
            and any(w.startswith(closing.EXIT_FAILED) for w in s.warnings))


def resting_exit(s) -> bool:
    return s.status is TradeStatus.CLOSING and [o.leg for o in s.open_orders] == ["exit"]


async def two_trades(h: Harness, *, exit_type: EntryType, exiting_sl: str, other_sl: str):
    """Two longs of QTY on one position, so each has an order-level TP/SL; the first exits
    with `exit_type`. Returns both handles and the first one's TP/SL order id."""
    await h.paper.admin.set_price(BTC, "95000")
    exiting = await h.trade(sizing=Sizing(size=QTY), sl=Decimal(exiting_sl),
                            strat=strategy(exit_entry_type=exit_type))
    await h.until_state(exiting, protected, "the exiting trade protected")
    other = await h.trade(sizing=Sizing(size=QTY), sl=Decimal(other_sl))
    await h.until_state(other, protected, "the other trade protected")
    st = await h.until_state(exiting, lambda s: s.protection.level == "order"
                             and s.protection.qty == QTY, "the exiting trade at order level")
    return exiting, other, st.protection.order_id


async def tpsl_of(h: Harness, order_id: str) -> list[tuple[Decimal | None, Decimal | None]]:
    """The pending TP/SL `order_id` at the exchange, as (sl price, sl qty)."""
    return [(t.sl_price, t.sl_qty) for t in await h.exchange.pending_tpsl_orders(BTC)
            if t.id == order_id]


async def test_an_order_level_tpsl_stays_while_a_chase_exit_rests_and_goes_once_it_filled(
    harness: Harness,
) -> None:
    h = harness
    exiting, other, tpsl = await two_trades(h, exit_type=EntryType.CHASE,
                                            exiting_sl="90000", other_sl="91000")
    await exiting.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    st = await h.until_state(exiting, resting_exit, "the post-only exit resting")
    assert [o.price for o in st.open_orders] == [ASK]
    # The trade's quantity is still covered while its exit waits for a taker.
    assert st.protection.order_id == tpsl
    assert await tpsl_of(h, tpsl) == [(Decimal("90000"), QTY)]

    await h.paper.admin.set_price(BTC, "95001")  # the resting sell fills as maker
    result = await h.result(exiting)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await tpsl_of(h, tpsl) == []  # gone with the trade
    assert await h.position_qty() == QTY  # the other trade's, untouched
    st2 = await h.state(other)
    assert st2.status is TradeStatus.TRACKING and st2.filled_qty == QTY
    assert [t.id for t in await h.exchange.pending_tpsl_orders(BTC)] == [st2.protection.order_id]
    await h.keep_history(exiting, "chase_exit_keeps_order_tpsl")


async def test_a_tpsl_that_fires_while_the_exit_rests_stops_the_exit(harness: Harness) -> None:
    """The exiting trade's SL fires before its exit fills: its quantity is closed once, by the
    SL; the exit order is cancelled and never placed again for a quantity the trade no longer
    owns (it would close the other trade's share)."""
    h = harness
    exiting, other, tpsl = await two_trades(h, exit_type=EntryType.CHASE,
                                            exiting_sl="91000", other_sl="90000")
    await exiting.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    await h.until_state(exiting, resting_exit, "the post-only exit resting")
    assert await tpsl_of(h, tpsl) == [(Decimal("91000"), QTY)]

    await h.paper.admin.set_price(BTC, "90900")  # the exiting trade's SL fires, not the other's
    result = await h.result(exiting)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    legs = [(o.leg, o.filled_qty) for o in await h.orders(result.trade_id)
            if o.leg in ("exit", "triggered", "external")]
    assert legs == [("exit", 0), ("triggered", QTY)]
    assert await h.exchange.pending_orders(BTC) == []  # no exit order left working
    assert await h.position_qty() == QTY
    st2 = await h.state(other)
    assert st2.status is TradeStatus.TRACKING and st2.filled_qty == QTY and st2.closed_qty == 0


async def test_a_failed_chase_exit_keeps_the_same_tpsl(harness: Harness) -> None:
    """The exit attempt fails (the symbol stops trading, which refuses TP/SL placements too):
    the TP/SL was never cancelled, so nothing has to be placed again."""
    h = harness
    exiting, other, tpsl = await two_trades(h, exit_type=EntryType.CHASE,
                                            exiting_sl="90000", other_sl="91000")
    await h.paper.admin.symbol_status(BTC, "STOP")
    await exiting.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    st = await h.until_state(exiting, exit_failing, "the exit failing, visibly")
    assert "STOP" in st.phase
    assert not any("WITHOUT a TP/SL" in w for w in st.warnings), st.warnings
    assert st.protection.order_id == tpsl
    assert await tpsl_of(h, tpsl) == [(Decimal("90000"), QTY)]
    assert (await exiting.describe()).status is WorkflowExecutionStatus.RUNNING

    await h.paper.admin.symbol_status(BTC, "OPEN")  # the next attempt's exit rests, then fills
    await h.until_state(exiting, resting_exit, "the retried exit resting")
    assert await tpsl_of(h, tpsl) == [(Decimal("90000"), QTY)]
    await h.paper.admin.set_price(BTC, "95001")
    result = await h.result(exiting)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == QTY
    assert (await h.state(other)).status is TradeStatus.TRACKING


@pytest_asyncio.fixture(loop_scope="session")
async def partial_paper() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_partial_fills=True,
                                  paper_rate_limit_scale=RATE_SCALE) as exchange:
        yield exchange


async def test_a_limit_exit_that_fills_in_parts_resizes_the_same_tpsl(
    temporal_client: Client, partial_paper: PaperExchange, wf_db, task_queue: str
) -> None:
    async with running_harness(temporal_client, partial_paper, wf_db, task_queue) as h:
        exiting, other, tpsl = await two_trades(h, exit_type=EntryType.LIMIT,
                                                exiting_sl="90000", other_sl="91000")
        await exiting.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
        await h.until_state(exiting, resting_exit, "the limit exit resting")
        assert await tpsl_of(h, tpsl) == [(Decimal("90000"), QTY)]

        await h.paper.admin.set_price(BTC, "95001")  # half of the resting sell fills
        half = QTY / 2
        st = await h.until_state(exiting, lambda s: s.closed_qty == half
                                 and s.protection.qty == half, "the TP/SL resized to the half")
        # The same TP/SL, modified: never more than the trade owns, never a second one.
        assert st.protection.order_id == tpsl
        assert await tpsl_of(h, tpsl) == [(Decimal("90000"), half)]
        assert len(await h.exchange.pending_tpsl_orders(BTC)) == 2  # its own and the other's

        price = Decimal("95001")

        async def closed() -> bool:
            nonlocal price
            described = await exiting.describe()
            if described.status is not WorkflowExecutionStatus.RUNNING:
                return True
            price += 1  # each move fills half of what rests, until nothing is left
            await h.paper.admin.set_price(BTC, price)
            return False

        await until(closed, "the exit filled in parts")
        result = await h.result(exiting)
        assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
        assert await tpsl_of(h, tpsl) == []
        assert await h.position_qty() == QTY
        st2 = await h.state(other)
        assert st2.status is TradeStatus.TRACKING and st2.closed_qty == 0
        assert [t.id for t in await h.exchange.pending_tpsl_orders(BTC)] == [
            st2.protection.order_id
        ]


async def test_a_tpsl_that_fires_just_before_its_cancel_is_recorded_not_closed_again(
    harness: Harness,
) -> None:
    """The exiting trade's SL fires between the exit's read of the exchange and its cancel of
    that SL: the cancel finds it gone. Its fate is asked before any exit order: the SL closed
    the trade's quantity, so no exit is sent (on the earlier code a reduce-only market close
    of 0.01 went out and closed the other trade's share)."""
    h = harness
    exiting, other, tpsl = await two_trades(h, exit_type=EntryType.MARKET,
                                            exiting_sl="94000", other_sl="90000")
    # The close wakes the trade, whose check reads the pending TP/SLs once; right after the
    # exit's own read (the second), the price falls through the exiting trade's SL (not the
    # other's): it fires before the exit cancels it.
    fall = {"path": "tpsl/get_pending_orders", "symbol": BTC, "price": "93900"}
    await h.paper.admin.faults(faults_after={"path": "tpsl/get_pending_orders",
                                             "faults": {"price_after": fall}})
    await exiting.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    result = await h.result(exiting)
    faults = (await h.paper.admin.state())["faults"]
    assert faults["faults_after"] is None and faults["price_after"] is None  # both fired
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    legs = [(o.leg, o.filled_qty) for o in await h.orders(result.trade_id)
            if o.leg in ("exit", "triggered", "external")]
    assert legs == [("triggered", QTY)]  # closed once, by its SL; no exit order sent
    assert await h.position_qty() == QTY  # the other trade's share, untouched
    st2 = await h.state(other)
    assert st2.status is TradeStatus.TRACKING and st2.filled_qty - st2.closed_qty == QTY
