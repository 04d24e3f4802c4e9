"""The webhook's fast path: a small worker (TradeWorkflow and its local activities, no remote
activity tasks) beside the main one; an eager start runs everything up to the first placement as
local activities, with nothing in the task queue between the alert and the order."""

from __future__ import annotations

from decimal import Decimal

from tests.workflows.harness import Harness
from trading.types import TradeStatus
from worker import FAST_PATH_ACTIVITIES, FAST_PATH_IDENTITY_SUFFIX, Deps, build_worker
from workflows.contract import Sizing
from workflows.converter import connect

BTC = "BTCUSDT"


async def test_eager_start_places_the_first_order_from_local_activities(harness: Harness) -> None:
    h = harness
    # The webhook process has a client of its own (one worker per client and task queue); an
    # eager start is served by a worker on the starting client.
    webhook_client = await connect(h.client.service_client.config.target_host, "default")
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=webhook_client)
    fast = build_worker(webhook_client, h.settings, deps, task_queue=h.task_queue, fast_path=True)
    config = fast.config()
    assert config["no_remote_activities"] is True
    assert sorted(a.__name__ for a in config["activities"]) == sorted(FAST_PATH_ACTIVITIES)
    async with fast:
        await h.paper.admin.set_price(BTC, "95000")
        h.client = webhook_client
        handle = await h.trade(sizing=Sizing(size=Decimal("0.01")), sl=Decimal("90000"),
                               start={"request_eager_start": True})
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.order_id is not None, "tracking")
    events = (await handle.fetch_history()).events
    # Local activities are recorded as markers (patch markers apart).
    markers = [e for e in events if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name != "core_patch"]
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in events if e.HasField("activity_task_scheduled_event_attributes")]
    assert len(markers) == 3  # get_rules, read_venue, place_order: local activities
    assert not {"get_rules", "read_venue", "place_order"} & set(scheduled)
    first_remote = next(i for i, e in enumerate(events)
                        if e.HasField("activity_task_scheduled_event_attributes"))
    assert max(events.index(m) for m in markers) < first_remote
    # The start was eager: the first workflow task ran in the fast-path worker, not the main
    # one (both poll the same queue; only an eager start guarantees the webhook's worker).
    first_task = next(e for e in events
                      if e.HasField("workflow_task_completed_event_attributes"))
    assert first_task.workflow_task_completed_event_attributes.identity.endswith(
        FAST_PATH_IDENTITY_SUFFIX)
    assert getattr(handle, "__temporal_eagerly_started") is True
