"""A `TradeWorkflow` started without the webhook cannot trade (security review D2): anyone who
reaches Temporal can start one with any input (`temporal workflow start --type TradeWorkflow`),
so before any order, leverage change or close of another trade, the workflow checks in
PostgreSQL that its trade row exists, names this very workflow id and comes from an accepted
alert (or an incident's adoption). A refused start sends nothing and writes no trade row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from db.models import Order as OrderRow
from db.models import Trade
from tests.workflows.harness import Harness, strategy
from trading.types import Intent, TradeStatus
from workflows.contract import Sizing, TradeInput
from workflows.converter import DATA_CONVERTER
from workflows.messages import CancelRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def columns(row: Trade) -> dict[str, Any]:
    """Every column of a trade row, `updated_at` included: a write shows."""
    return {c.name: getattr(row, c.name) for c in Trade.__table__.columns}


async def input_of(handle: WorkflowHandle) -> TradeInput:
    """The input a trade was started with, as anyone who can read its history has it."""
    started = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    [inp] = await DATA_CONVERTER.decode(started.input.payloads, [TradeInput])
    return inp


async def start_foreign(h: Harness, inp: TradeInput, workflow_id: str | None = None,
                        **start: Any) -> WorkflowHandle:
    """Start TradeWorkflow straight through Temporal, as an attacker would: no webhook."""
    return await h.client.start_workflow(
        TradeWorkflow.run, inp, id=workflow_id or f"attacker-{uuid.uuid4().hex[:8]}",
        task_queue=h.task_queue, **start,
    )


async def trade_count(h: Harness) -> int:
    async with h.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(Trade)) or 0


async def ended_genuine_trade(h: Harness) -> WorkflowHandle:
    """A genuine trade that filled, was tracked, then cancelled (flattened) by its owner."""
    await h.paper.admin.set_price(BTC, "95000")
    genuine = await h.trade(sizing=Sizing(size=QTY))
    await h.until_state(genuine, lambda s: s.status is TradeStatus.TRACKING, "the genuine trade open")
    await genuine.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    await h.result(genuine)
    return genuine


async def test_a_forged_input_naming_a_new_trade_id_sends_and_records_nothing(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    trades_before = await trade_count(h)
    forged = TradeInput(trade_id=987_654, strategy=strategy(), symbol=BTC,
                        intent=Intent.OPEN_LONG, sizing=Sizing(size_usdt=Decimal("77")), leverage=50,
                        received_at=datetime.now(UTC), alert_time=datetime.now(UTC))
    handle = await start_foreign(h, forged)
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert result.error is not None and "trade #987654 does not exist" in result.error
    assert not await h.place_requests()
    assert not await h.place_requests(path="change_leverage")
    assert await trade_count(h) == trades_before
    assert not await h.orders(987_654)


async def test_a_genuine_input_replayed_under_another_workflow_id_cannot_trade(
    harness: Harness,
) -> None:
    h = harness
    genuine = await ended_genuine_trade(h)
    row = await h.trade_row(genuine)
    before = columns(row)
    sent = len(await h.place_requests())

    replayed = await start_foreign(h, await input_of(genuine), "attacker-replay-1")
    result = await h.result(replayed)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert result.error == (f"trade #{row.id} belongs to workflow {genuine.id}, "
                            "not attacker-replay-1: nothing sent")
    assert len(await h.place_requests()) == sent
    assert columns(await h.trade_row(row.id)) == before
    assert await h.position_qty() == 0


async def test_a_forged_input_naming_an_existing_refused_trade_leaves_its_row_alone(
    harness: Harness,
) -> None:
    """The review's reproduction: trade #5 was REFUSED; a forged start naming it placed an
    order and overwrote its row (CANCELLED, filled 0.022)."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    refused = await h.trade(sizing=Sizing(size=QTY), alert_time=datetime(2020, 1, 1, tzinfo=UTC))
    assert (await h.result(refused)).status is TradeStatus.REFUSED
    row = await h.trade_row(refused)
    before = columns(row)

    forged = (await input_of(refused)).model_copy(update={
        "sizing": Sizing(size_usdt=Decimal("77")), "symbol": "ETHUSDT",
        "alert_time": datetime.now(UTC), "received_at": datetime.now(UTC),
    })
    handle = await start_foreign(h, forged, "attacker-no-secret-1")
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED
    assert result.error == (f"trade #{row.id} belongs to workflow {refused.id}, "
                            "not attacker-no-secret-1: nothing sent")
    assert not await h.place_requests()
    assert columns(await h.trade_row(row.id)) == before
    async with h.sessionmaker() as session:
        assert not (await session.scalars(select(OrderRow))).all()


async def test_a_forged_reverse_does_not_close_the_trade_it_names(harness: Harness) -> None:
    """A reverse closes the trades it replaces before its own entry: a forged one naming a
    running trade must be refused before it tells that trade anything."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    victim = await h.trade(sizing=Sizing(size=QTY))
    await h.until_state(victim, lambda s: s.status is TradeStatus.TRACKING, "the victim open")
    forged = TradeInput(trade_id=(await h.trade_row(victim)).id, strategy=strategy(),
                        symbol=BTC, intent=Intent.REVERSE_TO_SHORT, received_at=datetime.now(UTC),
                        sizing=Sizing(size=QTY), close_first_workflow_id=victim.id)
    result = await h.result(await start_foreign(h, forged))
    assert result.status is TradeStatus.REFUSED and "belongs to workflow" in (result.error or "")
    st = await h.state(victim)
    assert st.status is TradeStatus.TRACKING and st.closed_qty == 0
    assert await h.position_qty() == QTY
    await victim.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    await h.result(victim)


async def test_a_new_run_under_an_ended_trades_own_id_cannot_trade(harness: Harness) -> None:
    """Temporal lets anyone start a new run under a closed workflow's id (a reuse policy of
    their choosing): the trade row names that id, but it has ended, so nothing is sent."""
    h = harness
    genuine = await ended_genuine_trade(h)
    row = await h.trade_row(genuine)
    before = columns(row)
    sent = len(await h.place_requests())
    again = await start_foreign(h, await input_of(genuine), genuine.id,
                                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    result = await h.result(again)
    assert result.status is TradeStatus.REFUSED
    assert result.error == (f"trade #{row.id} ({genuine.id}) has ended ({row.status}): "
                            "nothing sent")
    assert len(await h.place_requests()) == sent
    assert columns(await h.trade_row(row.id)) == before

