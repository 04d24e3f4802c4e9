"""The trailing stop on real parts (workflows/trailing.py, docs/design.md#exits): the paper
exchange's stop rises with the price and never falls on a dip, a pullback through it closes the
trade; a price through the stop the trail wants while the exchange's is still behind closes the
trade by its own order; an activation delays the trail; the request cost of trailing trades is
bounded by the constants (and two trades on one symbol share their price reads)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.support.paper import PaperExchange
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness, strategy, until
from tests.workflows.processes import WorkerProcess, worker_env
from trading.exits import ExitPlan, Trailing
from trading.types import Intent, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest
from workflows.trade import TradeWorkflow
from workflows.trailing import TRAIL_CHECK_S, TRAIL_MOVE_MIN_S, TRAIL_READ_MAX_AGE_MS
from workflows.watcher import watcher_workflow_id

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
D = Decimal
# Follows the exchange rarely: the price reads in the request log are the trail's own.
SLOW_FOLLOW = 60


def trailing(pct: str = "1", **more: object) -> ExitPlan:
    return ExitPlan(trail=Trailing(pct=D(pct), **more))


async def exchange_stop(h: Harness) -> Decimal | None:
    """The stop of the symbol's pending TP/SL at the paper exchange (None: none)."""
    pending = await h.exchange.pending_tpsl_orders(BTC)
    assert len(pending) <= 1, pending
    return pending[0].sl_price if pending else None


async def until_exchange_stop(h: Harness, stop: str) -> None:
    async def probe() -> bool:
        return await exchange_stop(h) == D(stop)
    await until(probe, f"the exchange's stop at {stop}")


async def ticker_reads(h: Harness, since_ns: int) -> int:
    return len(await h.place_requests(since_ns, path="market/tickers"))


async def until_trail_checks(h: Harness, since_ns: int, n: int = 3) -> None:
    """Wait until the trail has read the price `n` times since `since_ns` (with SLOW_FOLLOW,
    every ticker read is a trail check's): the checks after a price change have seen it."""
    async def probe() -> bool:
        return await ticker_reads(h, since_ns) >= n
    await until(probe, f"{n} trail checks")


@contextlib.asynccontextmanager
async def stops_seen(h: Harness) -> AsyncIterator[list[Decimal]]:
    """Every stop the exchange's TP/SL shows while the block runs (sampled)."""
    seen: list[Decimal] = []

    async def sample() -> None:
        while True:
            stop = await exchange_stop(h)
            if stop is not None and (not seen or seen[-1] != stop):
                seen.append(stop)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_sampled(seen: list[Decimal], stop: str) -> None:
    async def sampled() -> bool:
        return bool(seen) and seen[-1] == D(stop)

    await until(sampled, f"the stop {stop} sampled")


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def nothing_left(h: Harness, side: str = "LONG") -> None:
    assert await h.position_qty(side=side) == 0
    assert await h.exchange.pending_tpsl_orders(BTC) == []
    assert await h.exchange.pending_orders(BTC) == []


async def test_the_stop_rises_with_the_price_holds_on_a_dip_and_closes_on_the_pullback(
        h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "100000")
    handle = await h.trade(sizing=Sizing(size=QTY), exits=trailing("1"),
                           strat=strategy(tracking_interval_s=SLOW_FOLLOW))
    # No SL in the alert: the trail's stop (active at once) is the trade's stop.
    async with stops_seen(h) as seen:
        await until_exchange_stop(h, "99000")
        await h.paper.admin.set_price(BTC, "101000")
        await until_exchange_stop(h, "99990")
        await h.paper.admin.set_price(BTC, "102000")
        await until_exchange_stop(h, "100980")
        dip = time.time_ns()
        await h.paper.admin.set_price(BTC, "101500")  # a dip that does not cross the stop
        await until_trail_checks(h, dip)
        st = await h.state(handle)
        assert st.exits is not None and st.exits.trail is not None
        assert (st.exits.trail.active, st.exits.trail.best_price, st.exits.trail.stop) == (
            True, D("102000"), D("100980"))
        assert st.protection.sl == D("100980") and await exchange_stop(h) == D("100980")
        await h.paper.admin.set_price(BTC, "100900")  # the pullback through the stop
        result = await h.result(handle)
    assert seen == [D("99000"), D("99990"), D("100980")]  # only ever up
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert result.realized_pnl > 0  # bought at 100000, stopped out at 100980
    await nothing_left(h)
    await h.keep_history(handle, "trailing_pullback")


async def test_a_short_trails_down_and_closes_on_the_bounce(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "100000")
    handle = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY),
                           sl=D("103000"), exits=trailing("1"),
                           strat=strategy(tracking_interval_s=SLOW_FOLLOW))
    # The alert's SL protects the entry; the trail's, tighter, takes over at its first check.
    async with stops_seen(h) as seen:
        await until_exchange_stop(h, "101000")
        await until_sampled(seen, "101000")
        await h.paper.admin.set_price(BTC, "98000")
        await until_exchange_stop(h, "98980")
        # The sampler reads every 0.1 s: the bounce must not close the stop before it has.
        await until_sampled(seen, "98980")
        await h.paper.admin.set_price(BTC, "99100")  # the bounce through the stop
        result = await h.result(handle)
    assert seen[-2:] == [D("101000"), D("98980")] and seen[0] in (D("103000"), D("101000"))
    assert seen == sorted(seen, reverse=True)  # only ever down
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert result.realized_pnl > 0  # sold at 100000, bought back at 98980
    await nothing_left(h, side="SHORT")


async def test_continue_as_new_keeps_the_best_price(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "100000")
    handle = await h.trade(sizing=Sizing(size=QTY), exits=trailing("1"),
                           strat=strategy(tracking_interval_s=SLOW_FOLLOW),
                           continue_as_new_after=40)
    await until_exchange_stop(h, "99000")
    await h.paper.admin.set_price(BTC, "102000")
    await until_exchange_stop(h, "100980")
    run_then = (await handle.describe()).run_id
    await h.paper.admin.set_price(BTC, "101500")  # a dip that does not cross the stop

    async def moved_on() -> bool:
        return (await handle.describe()).run_id != run_then
    await until(moved_on, "continued as new")
    continued = time.time_ns()
    await until_trail_checks(h, continued)  # the new run has read the dip
    st = await h.state(handle)
    assert st.exits is not None and st.exits.trail is not None
    assert (st.exits.trail.best_price, st.exits.trail.stop) == (D("102000"), D("100980"))
    assert await exchange_stop(h) == D("100980")
    await h.paper.admin.set_price(BTC, "100900")
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.realized_pnl > 0
    await nothing_left(h)


async def test_a_price_through_the_wanted_stop_closes_the_trade_while_the_exchange_is_behind(
        h: Harness) -> None:
    """A rise smaller than the step moves the stop the trail wants but not the exchange's
    (not worth a request): a price between the two is the trade's to act on."""
    await h.paper.admin.set_price(BTC, "100000")
    handle = await h.trade(sizing=Sizing(size=QTY), exits=trailing("1"),
                           strat=strategy(tracking_interval_s=SLOW_FOLLOW))
    await until_exchange_stop(h, "99000")
    await h.paper.admin.set_price(BTC, "100090")  # wants 99089.1: 89.1 < the 100.09 step
    st = await h.until_state(handle, lambda s: s.exits is not None and s.exits.trail is not None
                             and s.exits.trail.best_price == D("100090"), "the new best price")
    assert st.exits.trail.stop == D("99089.1") and await exchange_stop(h) == D("99000")
    await h.paper.admin.set_price(BTC, "99050")  # through 99089.1, not through 99000
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert result.realized_pnl < 0
    row = await h.trade_row(handle)
    assert "trailing stop 99089.1 crossed at 99050" in (row.warning or "")
    assert [o.leg for o in await h.orders(row.id)] == ["entry", "protection", "flatten"]
    await nothing_left(h)
    await h.keep_history(handle, "trailing_crossed_flatten")


async def test_an_activation_delays_the_trail(h: Harness) -> None:
    await h.paper.admin.set_price(BTC, "100000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=D("95000"),
                           exits=trailing("1", activation_pct=D("2")),
                           strat=strategy(tracking_interval_s=SLOW_FOLLOW))
    await until_exchange_stop(h, "95000")
    below = time.time_ns()
    await h.paper.admin.set_price(BTC, "101900")  # under 2 % of the entry: not yet
    await until_trail_checks(h, below)
    st = await h.state(handle)
    assert st.exits is not None and st.exits.trail is not None
    assert (st.exits.trail.active, st.exits.trail.best_price) == (False, None)
    assert await exchange_stop(h) == D("95000")
    await h.paper.admin.set_price(BTC, "102100")  # past 2 % of the entry (at the ask)
    await until_exchange_stop(h, "101079")
    st = await h.state(handle)
    assert st.avg_entry_price is not None and D("102100") >= st.avg_entry_price * D("1.02")
    assert (st.exits.trail.active, st.exits.trail.best_price) == (True, D("102100"))
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    await nothing_left(h)


async def test_trailing_trades_cost_a_bounded_number_of_requests_a_minute(h: Harness) -> None:
    """Two trades trail one symbol for a minute while the price rises every second (a move
    wanted at every check): their price reads are shared and their moves rate-limited."""
    await h.paper.admin.set_price(BTC, "100000")
    strat = strategy(tracking_interval_s=SLOW_FOLLOW)
    handles = [await h.trade(sizing=Sizing(size=QTY), exits=trailing("1"), strat=strat)
               for _ in range(2)]
    for handle in handles:
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.exits is not None and s.exits.trail is not None
                            and s.exits.trail.stop is not None, "trailing")
    start = time.time_ns()
    price = D("100000")
    for _ in range(60):
        price += 50
        await h.paper.admin.set_price(BTC, price)
        await asyncio.sleep(1)
    requests = [r for r in await h.paper.admin.requests(start) if r["t_ns"] < time.time_ns()]
    minutes = (time.time_ns() - start) / 60e9  # float-ok: time
    by_path: dict[str, int] = {}
    for r in requests:
        by_path[r["path"]] = by_path.get(r["path"], 0) + 1
    print(f"\nrequests in {minutes:.2f} min for 2 trailing trades: {len(requests)} {by_path}")
    tickers = sum(n for p, n in by_path.items() if p.endswith("market/tickers"))
    moves = sum(n for p, n in by_path.items() if "modify_order" in p)
    # One ticker read per check instant for the symbol, shared (not one per trade), plus the
    # follows on the strategy's interval; one rounding instant at each end.
    assert tickers <= (60 / TRAIL_CHECK_S + 60 / SLOW_FOLLOW + 2) * minutes
    # At most one move per TRAIL_MOVE_MIN_S per trade.
    assert moves <= 2 * (60 / TRAIL_MOVE_MIN_S + 1) * minutes
    for handle in handles:
        st = await h.state(handle)
        assert st.exits is not None and st.exits.trail is not None
        # The best price lags the price by a check interval and a read's age at most (a second
        # more for the loop's own pace), at 50 a second.
        lag_s = TRAIL_CHECK_S + TRAIL_READ_MAX_AGE_MS // 1000 + 1
        assert price - 50 * lag_s <= st.exits.trail.best_price <= price
        await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    for handle in handles:
        assert (await h.result(handle)).status is TradeStatus.CANCELLED
    await nothing_left(h)


def _worker(h: Harness, wf_db, tmp_path: Path) -> WorkerProcess:
    env = worker_env(db_url=wf_db[0], temporal=h.client.service_client.config.target_host,
                     task_queue=h.task_queue, exchange_url=h.paper.base_url,
                     api_key=h.paper.api_key, api_secret=h.paper.api_secret,
                     budget_scale=str(RATE_SCALE))
    return WorkerProcess(env=env, workdir=tmp_path)


@pytest_asyncio.fixture(loop_scope="session")
async def process_harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    """Workers in processes of their own, started and killed by the test (as in
    tests/workflows/test_restarts.py)."""
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               in_process_worker=False) as h:
        yield h
        with contextlib.suppress(Exception):  # not started
            await h.client.get_workflow_handle(watcher_workflow_id(h.task_queue)).terminate()


@pytest.mark.slow
async def test_a_worker_restart_keeps_the_best_price(
        process_harness: Harness, wf_db, tmp_path: Path) -> None:
    h = process_harness
    first, second = _worker(h, wf_db, tmp_path), _worker(h, wf_db, tmp_path)
    try:
        await first.start(h.client, h.task_queue)
        await h.paper.admin.set_price(BTC, "100000")
        handle = await h.trade(sizing=Sizing(size=QTY), exits=trailing("1"),
                               strat=strategy(tracking_interval_s=SLOW_FOLLOW))
        async with stops_seen(h) as seen:
            await until_exchange_stop(h, "99000")
            await h.paper.admin.set_price(BTC, "102000")
            await until_exchange_stop(h, "100980")
            first.kill()
            await h.paper.admin.set_price(BTC, "101500")  # a dip while no worker runs
            await second.start(h.client, h.task_queue)
            restarted = time.time_ns()
            await until_trail_checks(h, restarted)
            st = await h.state(handle)
            assert st.exits is not None and st.exits.trail is not None
            assert (st.exits.trail.best_price, st.exits.trail.stop) == (D("102000"), D("100980"))
            assert await exchange_stop(h) == D("100980")
            await h.paper.admin.set_price(BTC, "103500")
            await until_exchange_stop(h, "102465")
            await h.paper.admin.set_price(BTC, "102000")  # the pullback
            result = await h.result(handle)
        assert seen == [D("99000"), D("100980"), D("102465")]
        assert result.status is TradeStatus.CLOSED and result.realized_pnl > 0
        await nothing_left(h)
    finally:
        first.stop()
        second.stop()
