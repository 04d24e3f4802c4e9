"""An exit's calls run as local activities (issue 24: one exit alert to 50 trades): each
trade's reads, records, close order and TP/SL cancel run in the worker that runs its workflow
task, not as task-queue activities, and each trade still closes exactly its own quantity."""

from __future__ import annotations

import json
from decimal import Decimal

from temporalio.client import WorkflowHandle

from tests.workflows.harness import Harness
from trading.types import TradeStatus
from worker import Deps, build_worker
from workflows.contract import Sizing
from workflows.converter import connect
from workflows.messages import CloseRequest
from workflows.run import EXIT_LOCAL_CALLS
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
SIZES = (Decimal("0.010"), Decimal("0.020"), Decimal("0.030"))
EXIT_CALLS = {"refresh_trade", "record_trade", "place_order", "cancel_protection"}


async def _after_close(handle: WorkflowHandle) -> tuple[list[str], list[str], bool]:
    """After the close signal: the activity types scheduled on the task queue, those run as
    local activities (in order) and whether the patch is recorded."""
    events = (await handle.fetch_history()).events
    at = next(i for i, e in enumerate(events)
              if e.HasField("workflow_execution_signaled_event_attributes")
              and e.workflow_execution_signaled_event_attributes.signal_name == "close")
    after = events[at:]
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in after if e.HasField("activity_task_scheduled_event_attributes")]
    markers = [e.marker_recorded_event_attributes for e in after
               if e.HasField("marker_recorded_event_attributes")]
    local = [json.loads(m.details["data"].payloads[0].data)["activity_type"]
             for m in markers if m.marker_name == "core_local_activity"]
    patched = any(EXIT_LOCAL_CALLS.encode() in p.data for m in markers
                  if m.marker_name == "core_patch" for v in m.details.values() for p in v.payloads)
    return scheduled, local, patched


async def test_an_exit_to_several_trades_closes_each_its_own_quantity_from_local_calls(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handles = [await h.trade(sizing=Sizing(size=qty), tp=Decimal("99000"), sl=Decimal("90000"))
               for qty in SIZES]
    for handle in handles:
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.order_id is not None, "tracking with a TP/SL")
    assert await h.position_qty() == sum(SIZES)
    for handle in handles:
        await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    for handle, qty in zip(handles, SIZES, strict=True):
        result = await h.result(handle)
        assert result.status is TradeStatus.CLOSED and result.closed_qty == qty
        exits = [o for o in await h.orders(result.trade_id) if o.leg == "exit"]
        assert [o.filled_qty for o in exits] == [qty]  # its own quantity, one order
        scheduled, local, patched = await _after_close(handle)
        assert not EXIT_CALLS & set(scheduled), scheduled
        assert patched
        assert {"refresh_trade", "record_trade", "place_order", "cancel_protection"} <= set(local)
        # The close filled all the trade owned: it ends without another read to confirm it.
        assert "refresh_trade" not in local[local.index("place_order"):], local
    assert await h.position_qty() == 0
    assert not await h.exchange.pending_tpsl_orders(BTC)


async def test_a_trade_cached_in_the_webhooks_fast_path_worker_closes_there(
    harness: Harness,
) -> None:
    """A trade started eagerly stays cached in the webhook's small worker, whose workflow
    tasks then run its exit: every local activity of an exit is registered there."""
    h = harness
    webhook_client = await connect(h.client.service_client.config.target_host, "default")
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=webhook_client)
    fast = build_worker(webhook_client, h.settings, deps, task_queue=h.task_queue, fast_path=True)
    names = {a.__name__ for a in fast.config()["activities"]}
    assert names >= EXIT_CALLS
    async with fast:
        await h.paper.admin.set_price(BTC, "95000")
        h.client = webhook_client
        handle = await h.trade(sizing=Sizing(size=Decimal("0.01")), sl=Decimal("90000"),
                               start={"request_eager_start": True})
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.order_id is not None, "tracking")
        await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
        result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == Decimal("0.01")
    assert await h.position_qty() == 0
