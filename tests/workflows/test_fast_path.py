"""The webhook's fast path: a small worker (TradeWorkflow and its local activities, no remote
activity tasks) beside the main one; an eager start runs everything up to the first placement as
local activities, with nothing in the task queue between the alert and the order."""

from __future__ import annotations

from decimal import Decimal

from temporalio.worker import Worker

from settings import fast_path_queue
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from worker import (
    FAST_PATH_ACTIVITIES,
    FAST_PATH_IDENTITY_SUFFIX,
    Deps,
    activity_slots,
    build_worker,
)
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
    assert config["task_queue"] == fast_path_queue(h.task_queue)
    assert sorted(a.__name__ for a in config["activities"]) == sorted(FAST_PATH_ACTIVITIES)
    async with fast, _main_on_fast_queue(h):
        await h.paper.admin.set_price(BTC, "95000")
        h.client = webhook_client
        handle = await h.trade(sizing=Sizing(size=Decimal("0.01")), sl=Decimal("90000"),
                               start={"request_eager_start": True,
                                      "task_queue": fast_path_queue(h.task_queue)})
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.order_id is not None, "tracking")
    events = (await handle.fetch_history()).events
    # Local activities are recorded as markers (patch markers apart).
    markers = [e for e in events if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name != "core_patch"]
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in events if e.HasField("activity_task_scheduled_event_attributes")]
    # get_rules, read_venue, place_order: local activities; then, as tracking begins, the
    # records and the first check (workflows/tracking.py), local too.
    assert [_activity_type(m) for m in markers] == [
        "get_rules", "read_venue", "place_order", "record_trade", "refresh_trade", "record_trade"]
    assert not {"get_rules", "read_venue", "place_order"} & set(scheduled)
    first_remote = next(i for i, e in enumerate(events)
                        if e.HasField("activity_task_scheduled_event_attributes"))
    assert max(events.index(m) for m in markers[:3]) < first_remote
    # The start was eager: the first workflow task ran in the fast-path worker, not the main
    # one (both poll the same queue; only an eager start guarantees the webhook's worker).
    first_task = next(e for e in events
                      if e.HasField("workflow_task_completed_event_attributes"))
    assert first_task.workflow_task_completed_event_attributes.identity.endswith(
        FAST_PATH_IDENTITY_SUFFIX)
    assert getattr(handle, "__temporal_eagerly_started") is True


def _activity_type(marker) -> str:
    import json

    data = marker.marker_recorded_event_attributes.details["data"].payloads[0].data
    return json.loads(data)["activity_type"]


def _main_on_fast_queue(h: Harness) -> Worker:
    """What the main worker process runs beside its own queue: a full worker on the fast
    path's, for the eager trades' activities and later tasks (worker.serve)."""
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=h.client)
    return build_worker(h.client, h.settings, deps, task_queue=fast_path_queue(h.task_queue))


async def test_the_fast_path_worker_never_takes_up_a_trade_it_did_not_start(
    harness: Harness,
) -> None:
    """A burst's trades start without eagerness, on the main queue: none of their work may
    land in the webhook process, which must spend itself on answering (it polled the main
    queue before, and ran whichever trades' first tasks and local activities it drew)."""
    h = harness
    webhook_client = await connect(h.client.service_client.config.target_host, "default")
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=webhook_client)
    fast = build_worker(webhook_client, h.settings, deps, task_queue=h.task_queue, fast_path=True)
    async with fast:
        await h.paper.admin.set_price(BTC, "95000")
        handles = [await h.trade(sizing=Sizing(size=Decimal("0.01")), sl=Decimal("90000"))
                   for _ in range(6)]
        for handle in handles:
            await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                                and s.protection.order_id is not None, "tracking")
    for handle in handles:
        events = (await handle.fetch_history()).events
        identities = {e.workflow_task_completed_event_attributes.identity for e in events
                      if e.HasField("workflow_task_completed_event_attributes")}
        assert identities and not any(i.endswith(FAST_PATH_IDENTITY_SUFFIX) for i in identities)


def test_the_worker_process_splits_its_activity_slots_between_its_two_queues() -> None:
    """`tradewire worker` runs a worker on each queue (worker.main_workers): together they take
    no more activities than TRADEWIRE_WORKER_MAX_CONCURRENT_ACTIVITIES (each took that many)."""
    assert activity_slots(50) == (40, 10)
    for total in range(2, 300):
        main, fast = activity_slots(total)
        assert main + fast == total and main >= 1 and fast >= 1
