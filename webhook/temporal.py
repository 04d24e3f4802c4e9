"""The webhook's calls into Temporal: start a trade workflow, signal `close` and `cancel`.

A start is durable once Temporal accepts it; the webhook answers then, never waiting for the
exchange. Every call has a short deadline: TradingView gives up on a request after 3 s
(docs/tradingview.md#delivery).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from settings import Settings
from trading.types import TradeStatus
from workflows import search_attributes as sa
from workflows.contract import TradeInput
from workflows.messages import TradeMessages
from workflows.summary import static_summary

log = logging.getLogger("webhook")
RPC_TIMEOUT = timedelta(seconds=2)
CALL_BUDGET_S = 2.5
# TradingView gives up on a request after 3 s; the margin leaves time to record and answer.
ANSWER_BUDGET_S = 3.0
ANSWER_MARGIN_S = 0.15


class TemporalUnavailable(Exception):
    """Temporal did not take the call; the caller records that and answers 503."""


class StartUncertain(TemporalUnavailable):
    """The start timed out: Temporal may have started the workflow and lost only its answer
    (seen when it is overloaded). `started` tells which."""


class WorkflowGone(Exception):
    """The workflow is not running any more (it finished, or never existed)."""


async def start_trade(
    client: Client | None,
    settings: Settings,
    workflow_id: str,
    inp: TradeInput,
    *,
    eager: bool,
    resuming: bool = False,
    with_signal: tuple[str, BaseModel] | None = None,
) -> None:
    """Start `TradeWorkflow` under `workflow_id` with the reject-duplicate policy. Already
    started counts as success: the id is the alert's, so the trade exists exactly once.
    `resuming`: a new run of a trade whose workflow has closed (docs/design.md#resuming-a-trade)
    may reuse its id; one still running is left alone (already started). `with_signal`: sent
    with the start (signal-with-start), so a workflow that is running gets it instead."""
    if client is None:
        raise TemporalUnavailable(f"cannot connect to Temporal at {settings.temporal_target}")
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(sa.SYMBOL, inp.symbol),
            SearchAttributePair(sa.SIDE, inp.side.value),
            SearchAttributePair(sa.STRATEGY, inp.strategy.name),
            SearchAttributePair(sa.TRADE_STATUS, TradeStatus.PENDING.value),
        ]
    )
    try:
        await asyncio.wait_for(
            client.start_workflow(
                TradeMessages.WORKFLOW,
                inp,
                id=workflow_id,
                # An eager start goes to the fast path's own queue: the webhook's small worker
                # polls that one only, so it never takes up trades it did not start.
                task_queue=(settings.fast_path_task_queue if eager and settings.fast_path
                            else settings.task_queue),
                id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if resuming
                                 else WorkflowIDReusePolicy.REJECT_DUPLICATE),
                search_attributes=attributes,
                static_summary=static_summary(inp),
                request_eager_start=eager,
                **({"start_signal": with_signal[0], "start_signal_args": [with_signal[1]]}
                   if with_signal is not None else {}),
                rpc_timeout=RPC_TIMEOUT,
            ),
            CALL_BUDGET_S,
        )
    except WorkflowAlreadyStartedError:
        log.info("workflow %s was already started", workflow_id)
    except (RPCError, TimeoutError, OSError) as exc:
        if _timed_out(exc):
            raise StartUncertain(_describe(exc)) from exc
        raise TemporalUnavailable(_describe(exc)) from exc


async def started(client: Client, workflow_id: str, budget_s: float) -> bool:  # float-ok: seconds
    """After a start that timed out: True when the workflow exists after all (its id is its
    alert's, so it can only be this start's). False when Temporal says it does not, or cannot
    say within `budget_s`: the alert then stays NOT_STARTED and a redelivery starts it."""
    if budget_s <= 0:
        return False
    try:
        await asyncio.wait_for(
            client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=timedelta(seconds=budget_s)
            ),
            budget_s,
        )
    except (RPCError, TimeoutError, OSError) as exc:
        log.warning("workflow %s: start not confirmed (%s)", workflow_id, _describe(exc))
        return False
    return True


START_POLL_S = 0.05


async def exists(client: Client, workflow_id: str, budget_s: float) -> bool | None:  # float-ok
    """Whether Temporal has this workflow; None when it cannot say within `budget_s` (a
    workflow it cannot see is not one that does not exist)."""
    try:
        await asyncio.wait_for(
            client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=timedelta(seconds=budget_s)
            ),
            budget_s,
        )
    except RPCError as exc:
        return False if exc.status is RPCStatusCode.NOT_FOUND else None
    except (TimeoutError, OSError):
        return None
    return True


async def wait_started(client: Client, workflow_id: str, budget_s: float) -> bool:  # float-ok: seconds
    """Whether the workflow exists within `budget_s`, looking every START_POLL_S: a trade row
    whose start is in flight in another request (an exit racing its open)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + budget_s
    while (left := until - loop.time()) > 0:
        try:
            await asyncio.wait_for(
                client.get_workflow_handle(workflow_id).describe(
                    rpc_timeout=timedelta(seconds=left)
                ),
                left,
            )
            return True
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                log.warning("workflow %s: start not confirmed (%s)", workflow_id, _describe(exc))
                return False
        except (TimeoutError, OSError):
            return False
        await asyncio.sleep(min(START_POLL_S, max(until - loop.time(), 0)))
    return False


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, RPCError) and exc.status is RPCStatusCode.DEADLINE_EXCEEDED
    )


async def signal(
    client: Client | None, settings: Settings, workflow_id: str, name: str, arg: BaseModel
) -> None:
    """Send signal `name` to the running workflow; WorkflowGone if it is not running."""
    if client is None:
        raise TemporalUnavailable(f"cannot connect to Temporal at {settings.temporal_target}")
    handle = client.get_workflow_handle(workflow_id)
    try:
        await asyncio.wait_for(handle.signal(name, arg, rpc_timeout=RPC_TIMEOUT), CALL_BUDGET_S)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise WorkflowGone(f"workflow {workflow_id} is not running") from exc
        raise TemporalUnavailable(_describe(exc)) from exc
    except (TimeoutError, OSError) as exc:
        raise TemporalUnavailable(_describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "Temporal did not answer in time"
    return f"{type(exc).__name__}: {exc}"
