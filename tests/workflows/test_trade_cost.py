"""The cost of a trade in Temporal (issue 24, deliverable 2): the calls between the entry and
tracking run as local activities in the worker that runs the trade's task, so a market trade
reaches tracking without a task-queue activity (there were three, each a round trip and a
workflow task). Counted in the history, never timed."""

from __future__ import annotations

from decimal import Decimal

from tests.support.waiting import eventually
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from workflows.contract import Sizing
from workflows.messages import CloseRequest

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def _local_activities(events) -> list[str]:
    import json

    out = []
    for e in events:
        if e.HasField("marker_recorded_event_attributes"):
            m = e.marker_recorded_event_attributes
            if m.marker_name == "core_local_activity":
                out.append(json.loads(m.details["data"].payloads[0].data)["activity_type"])
    return out


async def test_a_market_trade_reaches_tracking_in_one_workflow_task(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY))
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                        and s.phase == "tracking", "tracking")
    row = await eventually(lambda: _recorded(h, handle), "the position id recorded")
    events = (await handle.fetch_history()).events
    first_timer = next(i for i, e in enumerate(events)
                       if e.HasField("timer_started_event_attributes"))
    before = events[:first_timer]
    remote = [e.activity_task_scheduled_event_attributes.activity_type.name for e in before
              if e.HasField("activity_task_scheduled_event_attributes")]
    # No task-queue activity at all: nothing between the alert and tracking waits for a
    # worker to poll (each did: a round trip, three events and a workflow task more).
    assert remote == []
    assert _local_activities(before) == ["get_rules", "read_venue", "place_order",
                                         "record_trade", "refresh_trade", "record_trade"]
    assert row.filled_qty == QTY

    await handle.signal("close", CloseRequest(reason="test over"))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0
    await h.keep_history(handle, "market_local_tracking_start")


async def _recorded(h: Harness, handle):
    row = await h.trade_row(handle)
    return row if row.status == "TRACKING" and row.position_id is not None else None
