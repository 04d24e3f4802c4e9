"""`AccountWatcherWorkflow`: keeps the account watcher activity running, one per account.

The worker starts it at boot with a fixed id (`watcher_workflow_id`) and "use existing", so
however many workers run there is one watcher; its activity heartbeats, and a dead worker's
watcher is restarted elsewhere after the heartbeat timeout.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.contract_tracking import WatcherInput
    from activities.watcher import RUN_FOR_S, WatcherActivities


def watcher_workflow_id(task_queue: str) -> str:
    return f"account-watcher-{task_queue}"


@workflow.defn(name="AccountWatcherWorkflow")
class AccountWatcherWorkflow:
    @workflow.run
    async def run(self, inp: WatcherInput) -> None:
        await workflow.execute_activity_method(
            WatcherActivities.watch_account,
            inp,
            start_to_close_timeout=timedelta(seconds=RUN_FOR_S + 600),
            heartbeat_timeout=timedelta(seconds=max(30, float(inp.interval_s) * 5)),  # float-ok: time or rate, not money
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        workflow.continue_as_new(inp)
