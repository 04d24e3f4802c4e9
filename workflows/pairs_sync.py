"""`PairsSyncWorkflow`: one refresh of every pair's rules, started by the worker's Temporal
Schedule (`worker.ensure_pairs_schedule`), hourly by default (TRADEWIRE_PAIRS_SYNC_INTERVAL_S).

A Schedule rather than a timer in a process: it outlives any worker, runs on whichever worker
polls the queue, and skips a run while the previous one still works (docs/design.md#pair-sync-on-a-schedule).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    # The activity's result type as its module declares it (workflows import no pair_catalog).
    from activities.pairs import PairActivities, SyncPairsInput, SyncReport

SYNC_TIMEOUT = timedelta(minutes=5)
# A run that cannot reach the exchange gives up after a few tries: the next scheduled run
# comes anyway, and a trade refreshes its own pair when it needs to (get_rules).
SYNC_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(minutes=1))


def pairs_schedule_id(task_queue: str) -> str:
    return f"pairs-sync-{task_queue}"


@workflow.defn(name="PairsSyncWorkflow")
class PairsSyncWorkflow:
    @workflow.run
    async def run(self, inp: SyncPairsInput) -> SyncReport:
        return await workflow.execute_activity_method(
            PairActivities.sync_pairs,
            inp,
            start_to_close_timeout=SYNC_TIMEOUT,
            retry_policy=SYNC_RETRY,
        )
