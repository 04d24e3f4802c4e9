"""TP/SL: `set_protection` refused by its validator and accepted; a TP/SL the exchange refuses
after a fill (flatten, or track with a warning); a TP/SL placement whose answer is dropped,
within its retries and after them, when the TP/SL wanted has changed meanwhile."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.workflows.harness import Harness, cli, strategy, until
from trading.types import OnProtectionRefused, OrderStatus, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest, ProtectionUpdate
from workflows.policies import PROTECT_RETRY
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def test_set_protection_refuses_an_invalid_price_and_moves_a_valid_one(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    await h.until_state(handle, protected, "protected")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(TradeWorkflow.set_protection, ProtectionUpdate(sl=Decimal("96000")))
    assert "below the current price" in str(refused.value.cause)
    st = await h.state(handle)
    assert (st.protection.tp, st.protection.sl) == (Decimal("99000"), Decimal("90000"))

    # As the README shows it: the CLI's JSON input, prices as strings.
    target = h.client.service_client.config.target_host
    answer = await cli("workflow", "update", "execute", "--address", target,
                       "--workflow-id", handle.id, "--name", "set_protection",
                       "--input", '{"tp": "97000.05", "sl": "93000"}')
    assert "97000.1" in answer  # on the tick, upwards
    state = json.loads(await cli("workflow", "query", "--address", target, "--workflow-id",
                                 handle.id, "--name", "state", "-o", "json"))
    assert "97000.1" in json.dumps(state)
    [tpsl] = await h.exchange.pending_tpsl_orders(BTC)
    assert (tpsl.tp_price, tpsl.sl_price) == (Decimal("97000.1"), Decimal("93000"))
    row = await h.trade_row(handle)
    assert (row.tp_price, row.sl_price) == (Decimal("97000.1"), Decimal("93000"))
    await h.paper.admin.set_price(BTC, "97200")
    assert (await h.result(handle)).status is TradeStatus.CLOSED
    await h.keep_history(handle, "set_protection")


async def test_protection_refused_after_a_fill_flattens_the_trade(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("96000"))  # a long's SL above
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    row = await h.trade_row(handle)
    assert "TP/SL refused" in (row.warning or "") and row.error is None
    assert [o.leg for o in await h.orders(row.id)] == ["entry", "protection", "flatten"]
    assert await h.position_qty() == 0
    await h.keep_history(handle, "protection_refused_flatten")


async def test_protection_refused_with_warn_keeps_tracking_visibly(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(on_protection_refused=OnProtectionRefused.WARN)
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("96000"), strat=strat)
    st = await h.until_state(handle, lambda s: s.warnings, "a visible warning")
    assert "WITHOUT protection" in st.warnings[0] and st.protection.order_id is None
    assert st.filled_qty == QTY and st.status is not TradeStatus.FAILED
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED


@pytest.mark.parametrize("mode", ["http_504", "hang"])
async def test_dropped_tpsl_answer_is_adopted_never_placed_twice(h: Harness, mode: str) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    await h.paper.admin.faults(drop_response={"target": "tpsl", "count": 1, "mode": mode})
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    st = await h.until_state(handle, protected, "protected", timeout_s=90)
    # Every TP/SL the exchange ever created (a hung answer is not in the request log yet).
    created = (await h.paper.admin.state())["tpsl"]
    assert [t["id"] for t in created] == [st.protection.order_id], created
    [row] = [o for o in await h.orders(st.trade_id) if o.leg == "protection"]
    assert row.exchange_order_id == st.protection.order_id and row.status == OrderStatus.NEW


@pytest.mark.parametrize("mode", ["http_504", "hang"])
async def test_dropped_order_answer_is_adopted_never_placed_twice(h: Harness, mode: str) -> None:
    await h.paper.admin.set_price(BTC, "95000")
    await h.paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": mode})
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    st = await h.until_state(handle, protected, "protected", timeout_s=90)
    assert st.filled_qty == QTY and await h.position_qty() == QTY
    created = [o for o in (await h.paper.admin.state())["orders"] if o["source"] == "api"]
    assert len(created) == 1, created  # every order the exchange ever accepted from us
    [entry] = [o for o in await h.orders(st.trade_id) if o.leg == "entry"]
    assert entry.status == OrderStatus.FILLED and entry.client_order_id == created[0]["clientId"]


async def test_a_lost_tpsl_placement_is_adopted_after_its_target_changed_never_doubled(
    h: Harness,
) -> None:
    """Issue 19, gap B. A's TP/SL placement creates its TP/SL, but the answer is lost and the
    exchange stays unreachable until the placement's retries run out. Meanwhile
    `set_protection` moves the TP, so the next placement wants another TP/SL than the lost
    one. The lost one is A's (its claim is unsettled, it matches the claim): it is adopted and
    moved, never left live beside a second one (two order-level TP/SLs of 0.01 would close
    B's 0.01 too), and its claim is settled."""
    quiet = strategy("quiet", tracking_interval_s=3600)
    await h.paper.admin.set_price(BTC, "95000")
    b = await h.trade(sizing=Sizing(size=QTY), strat=quiet)  # no TP/SL
    await h.until_state(b, lambda s: s.status is TradeStatus.TRACKING, "B tracking")
    # A's first TP/SL placement is executed, its answer lost, then every look fails: one 503
    # per attempt of the placement, so its retries run out with the TP/SL unconfirmed.
    await h.paper.admin.faults(
        drop_response={"target": "tpsl", "count": 1},
        faults_after={"path": "tpsl/place_order",
                      "faults": {"http_5xx": PROTECT_RETRY.maximum_attempts}},
    )
    a = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                      strat=quiet)

    async def created() -> list[dict]:
        return (await h.paper.admin.state())["tpsl"]

    [lost] = await until(created, "A's TP/SL created, its answer lost")
    upd = ProtectionUpdate(tp=Decimal("98000"))
    view = await a.execute_update(TradeWorkflow.set_protection, upd)  # waits for the retries
    assert view.tp == Decimal("98000") and view.order_id == lost["id"], view

    [tpsl] = (await h.paper.admin.state())["tpsl"]  # every TP/SL the exchange ever created
    assert tpsl["id"] == lost["id"] and tpsl["status"] == "NEW"
    assert (Decimal(tpsl["tpPrice"]), Decimal(tpsl["slPrice"])) == (Decimal("98000"),
                                                                     Decimal("90000"))
    assert Decimal(tpsl["tpQty"]) == QTY
    st = await h.state(a)
    rows = [o for o in await h.orders(st.trade_id) if o.leg == "protection"]
    assert [(o.status, o.exchange_order_id) for o in rows] == [(OrderStatus.NEW, lost["id"])]
    await a.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(a)).status is TradeStatus.CANCELLED
    assert (await h.paper.admin.state())["tpsl"][0]["status"] != "NEW"
    await b.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(b)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness
