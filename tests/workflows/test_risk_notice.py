"""A trading state shown where it affects a trade (docs/design.md#risk): the account watcher's
`trading_state` signal puts the state that applies to each live trade in its `state` query and
in its current details in the Temporal UI, and takes it away on a resume. On real parts (the
paper exchange over HTTP, PostgreSQL, trades in a real worker); the tests drive the watcher's
rounds themselves and count them."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest_asyncio
from sqlalchemy import text
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle

from activities.contract_tracking import StateNotice
from activities.risk import Notice, RiskBook
from db.models import Strategy
from tests.workflows.harness import Harness, strategy
from tests.workflows.test_risk_latch import Watch
from trading.risk import ACCOUNT, strategy_scope
from trading.types import PositionSide, TradeStatus, TradingState
from workflows.contract import Sizing
from workflows.messages import CloseRequest, TradeMessages, TradingStateNotice
from workflows.state import TradeState
from workflows.summary import details
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
RISK_TABLES = "TRUNCATE incident, risk_state, risk_event, risk_day"
HALTED_LINE = ("risk: account HALTED (alice: end of day) — exits refused, nothing new opens; "
               "TP/SL stay")


# --- pure -----------------------------------------------------------------------------------


def test_the_watchers_notice_is_a_trading_state_notice() -> None:
    """The watcher sends StateNotice (activities cannot import workflows); the trade's
    `trading_state` handler takes TradingStateNotice: the same name, fields and defaults."""
    assert StateNotice.SIGNAL == TradeMessages.TRADING_STATE
    assert set(StateNotice.model_fields) == set(TradingStateNotice.model_fields)
    for notice in (StateNotice(), StateNotice(state=TradingState.HALTED, scope="strategy:t",
                                              reason="alice: end of day")):
        wire = notice.model_dump(mode="json")
        assert TradingStateNotice.model_validate(wire).model_dump(mode="json") == wire
    assert StateNotice().model_dump() == TradingStateNotice().model_dump()


def _state(**fields: object) -> TradeState:
    return TradeState(trade_id=1, symbol=BTC, side=PositionSide.LONG,
                      status=TradeStatus.TRACKING, phase="tracking", **fields)


def test_details_show_the_trading_state_that_affects_the_trade() -> None:
    assert "risk:" not in details(_state(), "trend")
    halted = details(_state(trading_state=TradingState.HALTED, trading_state_scope=ACCOUNT,
                            trading_state_reason="alice: end of day"), "trend").splitlines()
    assert halted[1] == HALTED_LINE  # right under the status line
    reduce = details(_state(trading_state=TradingState.REDUCE_ONLY,
                            trading_state_scope=strategy_scope("trend"),
                            trading_state_reason="bob: drawdown"), "trend")
    assert ("risk: strategy 'trend' REDUCE_ONLY (bob: drawdown) — nothing new opens; exits, "
            "closes and TP/SL go through") in reduce.splitlines()


# --- on real parts --------------------------------------------------------------------------

HOUR = strategy(tracking_interval_s=3600)


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The harness without trading states; none is left for the tests after."""
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text(RISK_TABLES))
    await harness.paper.admin.set_price(BTC, "95000")
    yield harness
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text(RISK_TABLES))


async def current_details(handle: WorkflowHandle) -> str:
    """What the Temporal UI shows as the workflow's current details (its metadata query)."""
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return meta.current_details


async def tracking(h: Harness, **fields: object) -> WorkflowHandle:
    trade = await h.trade(sizing=Sizing(size=QTY), **fields)
    await h.until_state(trade, lambda s: s.status is TradeStatus.TRACKING
                        and s.filled_qty == QTY, "the trade tracks its entry")
    return trade


async def test_a_halt_shows_on_a_tracking_trade_within_a_round_and_a_resume_clears_it(
    h: Harness,
) -> None:
    watch = Watch(h)
    trade = await tracking(h, strat=HOUR)
    await watch.round()  # no state was ever set: nothing to tell (a trade starts ACTIVE)
    st = await h.state(trade)
    assert (st.trading_state, st.trading_state_scope) == (TradingState.ACTIVE, None)
    assert "risk:" not in await current_details(trade)
    assert await signals(trade) == []

    book = RiskBook(h.sessionmaker)
    await book.set_state(ACCOUNT, TradingState.HALTED, actor="alice", reason="end of day")
    await watch.round()
    st = await h.until_state(trade, lambda s: s.trading_state is TradingState.HALTED,
                             "the trade shows the halt")
    assert (st.trading_state_scope, st.trading_state_reason) == (ACCOUNT, "alice: end of day")
    assert st.status is TradeStatus.TRACKING and st.warnings == []  # shown, not a stop
    assert HALTED_LINE in (await current_details(trade)).splitlines()
    for _ in range(2):  # told once: the same state is not sent again every round
        await watch.round()
    restarted = Watch(h)  # a watcher that starts tells every live trade again
    await restarted.round()

    await book.set_state(ACCOUNT, TradingState.ACTIVE, actor="alice", reason="new day")
    await restarted.round()
    st = await h.until_state(trade, lambda s: s.trading_state is TradingState.ACTIVE,
                             "the resume clears the halt")
    assert (st.trading_state_scope, st.trading_state_reason) == (None, None)
    assert "risk:" not in await current_details(trade)
    assert (watch.count, restarted.count) == (4, 2)
    assert await signals(trade) == [
        {"state": "HALTED", "scope": "account", "reason": "alice: end of day"},
        {"state": "HALTED", "scope": "account", "reason": "alice: end of day"},
        {"state": "ACTIVE", "scope": "account", "reason": ""},
    ]
    await trade.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    assert (await h.result(trade)).status is TradeStatus.CLOSED
    await h.keep_history(trade, "trading_state_notices")  # the signals replay (test_replay)


async def signals(handle: WorkflowHandle) -> list[dict[str, object]]:
    """The `trading_state` signals in the workflow's history, their payloads as sent."""
    history = await handle.fetch_history()
    return [json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)
            for e in history.events
            if e.HasField("workflow_execution_signaled_event_attributes")
            and e.workflow_execution_signaled_event_attributes.signal_name
            == TradeMessages.TRADING_STATE]


async def add_strategy(h: Harness) -> tuple[int, str]:
    name = f"n{uuid.uuid4().hex[:10]}"
    async with h.sessionmaker() as session, session.begin():
        row = Strategy(name=name)
        session.add(row)
        await session.flush()
        return row.id, name


async def test_a_strategys_reduce_only_shows_on_its_own_trades_only(h: Harness) -> None:
    watch = Watch(h)
    (mine_id, mine), (other_id, other) = await add_strategy(h), await add_strategy(h)
    ours = await tracking(h, strat=strategy(mine, tracking_interval_s=3600), strategy_id=mine_id)
    theirs = await tracking(h, strat=strategy(other, tracking_interval_s=3600),
                            strategy_id=other_id)
    book = RiskBook(h.sessionmaker)
    await book.set_state(strategy_scope(mine), TradingState.REDUCE_ONLY, actor="bob",
                         reason="drawdown")
    await watch.round()
    st = await h.until_state(ours, lambda s: s.trading_state is TradingState.REDUCE_ONLY,
                             "the strategy's trade shows its reduce-only")
    assert (st.trading_state_scope, st.trading_state_reason) == (strategy_scope(mine),
                                                                 "bob: drawdown")
    assert (f"risk: strategy '{mine}' REDUCE_ONLY (bob: drawdown) — nothing new opens; exits, "
            "closes and TP/SL go through") in (await current_details(ours)).splitlines()
    # The other strategy's trade was told ACTIVE (the first round tells every trade).
    assert (await h.state(theirs)).trading_state is TradingState.ACTIVE
    assert "risk:" not in await current_details(theirs)

    # The stricter wins: an account HALTED over the strategy's REDUCE_ONLY reaches both; a
    # strategy HALTED as strict as the account's is shown as the account's.
    await book.set_state(ACCOUNT, TradingState.HALTED, actor="alice", reason="end of day")
    await book.set_state(strategy_scope(other), TradingState.HALTED, actor="bob", reason="x")
    assert {n.workflow_id: n for n in await book.notices()} == {
        w.id: Notice(w.id, TradingState.HALTED, ACCOUNT, "alice: end of day")
        for w in (ours, theirs)}
    await book.set_state(ACCOUNT, TradingState.ACTIVE, actor="alice", reason="new day")
    assert {n.workflow_id: n for n in await book.notices()} == {
        ours.id: Notice(ours.id, TradingState.REDUCE_ONLY, strategy_scope(mine), "bob: drawdown"),
        theirs.id: Notice(theirs.id, TradingState.HALTED, strategy_scope(other), "bob: x")}
    await watch.round()
    st = await h.until_state(theirs, lambda s: s.trading_state is TradingState.HALTED,
                             "the other strategy's halt shows on its trade")
    assert st.trading_state_scope == strategy_scope(other)
    assert (await h.state(ours)).trading_state is TradingState.REDUCE_ONLY
    assert watch.count == 2
