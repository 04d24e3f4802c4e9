"""The daily loss latch (activities/daily_loss.py) on real parts: the paper exchange over HTTP
for the fills, positions and account it reads, PostgreSQL for the rows it sums and the states it
latches. The watcher's rounds are in tests/workflows/test_risk_latch.py."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text

from activities.contract_tracking import CancelStop
from activities.daily_loss import (
    LATCH_ACTOR,
    DailyLossLatch,
    account_equity,
    marks_of,
    today_pnl,
    trading_day,
)
from activities.records import Records
from activities.risk import RiskBook
from db.models import (
    Fill,
    Incident,
    Order,
    RiskDay,
    RiskEvent,
    RiskPnl,
    RiskState,
    Strategy,
    Trade,
)
from exchange.client import BitunixClient
from tests.support.paper import PaperExchange
from trading.risk import ACCOUNT, RiskLimits, strategy_scope
from trading.types import OrderType, PositionSide, Side, TradingState
from workflows.messages import CancelRequest, TradeMessages

BTC = "BTCUSDT"
LONG = (BTC, PositionSide.LONG)
TAKER = Decimal("0.0006")  # the paper exchange's taker rate (Settings.paper_fee_rate_taker)


@pytest.fixture
async def db(sessionmaker):
    async with sessionmaker() as session, session.begin():
        await session.execute(text(
            'TRUNCATE trade, "order", fill, incident, risk_state, risk_event, risk_day, risk_pnl, '
            "strategy RESTART IDENTITY CASCADE"))
    return sessionmaker


async def add_strategy(db, name: str, **limits: Decimal) -> int:
    async with db() as session, session.begin():
        row = Strategy(name=name, **limits)
        session.add(row)
        await session.flush()
        return row.id


async def add_trade(db, strategy_id: int | None, *, status: str = "TRACKING",
                    entries: tuple[tuple[str, Decimal, Decimal], ...] = (),
                    closes: tuple[tuple[str, Decimal, Decimal], ...] = ()) -> dict[str, int]:
    """A trade with filled order rows (client id, qty, average price); client id → row id."""
    out = {}
    async with db() as session, session.begin():
        trade = Trade(workflow_id=f"trade-{time.time_ns()}", strategy_id=strategy_id, symbol=BTC,
                      side="LONG", intent="OPEN_LONG", entry_type="market", status=status)
        session.add(trade)
        await session.flush()
        for leg, side, rows in (("entry", "BUY", entries), ("exit", "SELL", closes)):
            for client_id, qty, price in rows:
                order = Order(trade_id=trade.id, client_order_id=client_id, symbol=BTC, leg=leg,
                              side=side, order_type="MARKET", qty=qty, filled_qty=qty,
                              avg_price=price, status="FILLED")
                session.add(order)
                await session.flush()
                out[client_id] = order.id
    return out


async def market(client: BitunixClient, side: Side, qty: str, client_id: str,
                 reduce_only: bool = False) -> None:
    await client.place_order(symbol=BTC, side=side, qty=Decimal(qty), order_type=OrderType.MARKET,
                             client_id=client_id, reduce_only=reduce_only or None)


async def fills_of(client: BitunixClient, *client_ids: str):
    fills = await client.history_trades(BTC, limit=100)
    return {cid: [f for f in fills if f.client_id == cid] for cid in client_ids}


async def test_a_closed_loss_counts_its_gross_pnl_less_its_fees_and_equity_is_the_balance(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """The exchange's sign conventions, as the sum relies on them: a fill's `realizedPNL` is
    gross (a loss is negative) and its `fee` a positive cost, so the day's realized PnL with
    fees is Σ (realized_pnl − fee), below the gross figure."""
    await paper.admin.set_price(BTC, "95000")
    await market(paper_client, Side.BUY, "0.0100", "dl-e1")
    await paper.admin.set_price(BTC, "94000")
    await market(paper_client, Side.SELL, "0.0100", "dl-x1", reduce_only=True)
    got = await fills_of(paper_client, "dl-e1", "dl-x1")
    [entry], [close] = got["dl-e1"], got["dl-x1"]
    assert (entry.price, close.price) == (Decimal("95000.1"), Decimal("93999.9"))  # ask, bid
    assert entry.realized_pnl == 0 and entry.fee == Decimal("0.0100") * entry.price * TAKER > 0
    assert close.realized_pnl == Decimal("0.0100") * (close.price - entry.price) < 0  # gross
    assert close.fee == Decimal("0.0100") * close.price * TAKER > 0

    sid = await add_strategy(db, "s1")
    rows = await add_trade(db, sid, status="CLOSED",
                           entries=(("dl-e1", Decimal("0.01"), entry.price),),
                           closes=(("dl-x1", Decimal("0.01"), close.price),))
    records = Records(db)
    await records.save_fills(rows["dl-e1"], [entry])
    await records.save_fills(rows["dl-x1"], [close])
    day, start = trading_day(datetime.now(UTC), "UTC")
    async with db() as session:
        today = await today_pnl(session, day, start, {})
    net = close.realized_pnl - entry.fee - close.fee
    assert today.strategies["s1"].realized == net == today.account.pnl
    assert net < close.realized_pnl and today.account.unrealized == 0

    # Flat, the equity (available + frozen + margin + unrealized) is the wallet balance: the
    # deposit plus the gross PnL minus the fees.
    account = await paper_client.account()
    assert account_equity(account) == paper.settings.paper_balance + net
    assert Decimal((await paper.admin.state())["balances"]["USDT"]) == account_equity(account)


async def test_an_open_trade_counts_what_it_owns_at_the_mark_its_position_implies(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """Two strategies' trades share one position; each counts its own quantity, from its own
    entry, at the mark the position read implies (no ticker read)."""
    await paper.admin.set_price(BTC, "95000")
    await market(paper_client, Side.BUY, "0.0060", "dl-a1")
    await market(paper_client, Side.BUY, "0.0040", "dl-b1")
    await paper.admin.set_price(BTC, "94000")
    [position] = [p for p in await paper_client.pending_positions(BTC) if p.qty > 0]
    marks = marks_of({(position.symbol, position.side):
                      (position.qty, position.avg_open_price, position.unrealized_pnl)})
    assert marks == {LONG: Decimal("94000")}  # the paper exchange's mark, implied

    got = await fills_of(paper_client, "dl-a1", "dl-b1")
    a, b = await add_strategy(db, "a"), await add_strategy(db, "b")
    for sid, cid, qty in ((a, "dl-a1", "0.006"), (b, "dl-b1", "0.004")):
        rows = await add_trade(db, sid, entries=((cid, Decimal(qty), got[cid][0].price),))
        await Records(db).save_fills(rows[cid], got[cid])
    day, start = trading_day(datetime.now(UTC), "UTC")
    async with db() as session:
        today = await today_pnl(session, day, start, marks)
    ask = Decimal("95000.1")
    assert today.strategies["a"].unrealized == Decimal("0.006") * (94000 - ask)
    assert today.strategies["b"].unrealized == Decimal("0.004") * (94000 - ask)
    assert today.strategies["a"].realized == -got["dl-a1"][0].fee  # the entry's fee, today
    assert today.account.unrealized == position.unrealized_pnl  # together: the position's
    async with db() as session:  # a position the read did not show: no mark, nothing counted
        assert (await today_pnl(session, day, start, {})).account.unrealized == 0


def test_the_trading_day_starts_at_midnight_in_its_time_zone() -> None:
    at = datetime(2026, 3, 8, 4, 30, tzinfo=UTC)  # New York's DST starts at 07:00 UTC that day
    assert trading_day(at, "UTC") == (at.date(), datetime(2026, 3, 8, tzinfo=UTC))
    day, start = trading_day(at, "America/New_York")
    assert str(day) == "2026-03-07" and start.astimezone(UTC) == datetime(2026, 3, 7, 5, tzinfo=UTC)
    day, start = trading_day(at, "Asia/Tokyo")
    assert str(day) == "2026-03-08" and start.astimezone(UTC) == datetime(2026, 3, 7, 15, tzinfo=UTC)


async def test_only_fills_since_the_days_start_count(db) -> None:
    sid = await add_strategy(db, "s1")
    rows = await add_trade(db, sid, status="CLOSED",
                           entries=(("e", Decimal(1), Decimal(100)),),
                           closes=(("x1", Decimal("0.5"), Decimal(90)),
                                   ("x2", Decimal("0.5"), Decimal(80))))
    tokyo_midnight = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)  # 2026-05-02 00:00 in Tokyo
    async with db() as session, session.begin():
        session.add_all([
            Fill(order_id=rows["e"], exchange_trade_id="f-e", qty=1, price=100, fee=1,
                 realized_pnl=0, filled_at=tokyo_midnight - timedelta(hours=2)),
            Fill(order_id=rows["x1"], exchange_trade_id="f-x1", qty=Decimal("0.5"), price=90,
                 fee=Decimal("0.5"), realized_pnl=-5,
                 filled_at=tokyo_midnight - timedelta(milliseconds=1)),
            Fill(order_id=rows["x2"], exchange_trade_id="f-x2", qty=Decimal("0.5"), price=80,
                 fee=Decimal("0.25"), realized_pnl=-10, filled_at=tokyo_midnight),
        ])
    day, start = trading_day(tokyo_midnight + timedelta(hours=3), "Asia/Tokyo")
    async with db() as session:
        today = await today_pnl(session, day, start, {})
    assert today.account.realized == Decimal("-10.25")  # the last fill only
    day, start = trading_day(tokyo_midnight + timedelta(hours=3), "UTC")  # 2026-05-01 UTC
    async with db() as session:
        assert (await today_pnl(session, day, start, {})).account.realized == Decimal("-16.75")


async def states(db) -> dict[str, tuple[str, bool, str]]:
    return {s: (st.state.value, st.latched, st.changed_by)
            for s, st in (await RiskBook(db).states()).items()}


async def daily_incidents(db) -> list[Incident]:
    async with db() as session:
        return list((await session.scalars(
            select(Incident).where(Incident.kind == "daily_loss").order_by(Incident.id))).all())


async def latch_events(db) -> int:
    async with db() as session:
        return await session.scalar(
            select(func.count()).select_from(RiskEvent).where(RiskEvent.actor == LATCH_ACTOR))


async def test_a_breach_latches_its_scope_once_and_a_resume_holds_until_the_loss_grows(
    db, paper: PaperExchange, paper_client: BitunixClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The strategy's own USDT limit latches the strategy alone; the incident and the ERROR say
    so; later checks add nothing; an operator's resume holds at today's loss and the latch comes
    back only when the loss grows beyond it."""
    caplog.set_level(logging.ERROR, logger="activities.daily_loss")
    sid = await add_strategy(db, "s", daily_loss_usdt=Decimal(10))
    await add_trade(db, sid, entries=(("e", Decimal(1), Decimal(100)),))
    latch = DailyLossLatch(db, paper_client)
    scope = strategy_scope("s")

    assert await latch.check({LONG: Decimal(91)}) == []  # −9: under the limit
    [done] = await latch.check({LONG: Decimal(90)})  # −10: the limit
    assert (done.scope, done.state) == (scope, TradingState.HALTED)
    assert done.reason == "daily_loss_usdt of the strategy 's' is 10: today's PnL is -10.00 USDT"
    assert (await states(db))[scope] == ("HALTED", True, LATCH_ACTOR)
    assert (await states(db))[ACCOUNT][0] == "ACTIVE"  # the account has no limit
    [row] = await daily_incidents(db)
    assert (row.id, row.symbol, row.side, row.status) == (done.incident_id, "*", None, "open")
    assert row.detail == f"the strategy 's' is latched HALTED: {done.reason}"
    assert [a["action"] for a in row.actions] == ["report", "latch"]
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert error.startswith("daily loss: the strategy 's' is latched HALTED: daily_loss_usdt")
    assert "`tradewire risk resume --strategy s` lifts it" in error

    assert await latch.check({LONG: Decimal(80)}) == []  # latched already: nothing more
    assert await latch_events(db) == 1 and len(await daily_incidents(db)) == 1

    await RiskBook(db).set_state(scope, TradingState.ACTIVE, actor="alice", reason="seen it")
    assert await latch.check({LONG: Decimal(80)}) == []  # −20 acknowledged by the resume
    [resolved] = await daily_incidents(db)
    assert (resolved.status, resolved.cleared_at is not None) == ("resolved", True)
    assert resolved.resolution == "the strategy 's' was set ACTIVE by alice: seen it"
    assert await latch.check({LONG: Decimal(80)}) == []
    assert (await states(db))[scope] == ("ACTIVE", False, "alice")

    [again] = await latch.check({LONG: Decimal("79.9")})  # the loss grows beyond it
    assert again.reason.endswith("a loss beyond the 20.00 USDT acknowledged when alice set it "
                                 "ACTIVE")
    assert (await states(db))[scope] == ("HALTED", True, LATCH_ACTOR)
    assert [i.status for i in await daily_incidents(db)] == ["resolved", "open"]


async def test_the_percent_base_is_the_equity_read_once_a_day(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """The account's % limit uses the equity at the day's start: read from the exchange at the
    first check of the day (one `account` request), kept in `risk_day` for the rest of it."""
    await add_trade(db, None, entries=(("e", Decimal(1), Decimal(1000)),))
    now = datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
    latch = DailyLossLatch(db, paper_client, latch_state=TradingState.REDUCE_ONLY,
                           account_limits=RiskLimits(daily_loss_pct=Decimal("0.5"),
                                                     max_order_usdt=Decimal(1)),
                           clock=lambda: now)
    since = time.time_ns()
    assert await latch.check({LONG: Decimal(501)}) == []  # −499: 0.499 % of 100,000
    assert await latch.check({LONG: Decimal(501)}) == []
    reads = [r for r in await paper.admin.requests(since) if r["path"].endswith("/account")]
    assert len(reads) == 1
    async with db() as session:
        [day] = (await session.scalars(select(RiskDay))).all()
    assert (str(day.day), day.equity) == ("2026-06-01", paper.settings.paper_balance)

    [done] = await latch.check({LONG: Decimal(500)})  # −500: 0.5 %
    assert (done.scope, done.state) == (ACCOUNT, TradingState.REDUCE_ONLY)
    assert done.reason == ("daily_loss_pct of the account is 0.5 %: today's PnL is -500.00 USDT, "
                           "0.50 % of the day's starting equity 100000.00 USDT")
    now = datetime(2026, 6, 2, 0, 0, tzinfo=UTC)  # a new day: a new base, read once more
    await latch.check({LONG: Decimal(500)})
    async with db() as session:
        assert len((await session.scalars(select(RiskDay))).all()) == 2


async def test_a_scope_already_as_strict_is_left_as_the_operator_set_it(
    db, paper_client: BitunixClient
) -> None:
    await add_trade(db, None, entries=(("e", Decimal(1), Decimal(100)),))
    await RiskBook(db).set_state(ACCOUNT, TradingState.HALTED, actor="bob", reason="by hand")
    latch = DailyLossLatch(db, paper_client, account_limits=RiskLimits(daily_loss_usdt=Decimal(1)))
    assert await latch.check({LONG: Decimal(50)}) == []
    assert (await states(db))[ACCOUNT] == ("HALTED", False, "bob")
    assert await daily_incidents(db) == [] and await latch_events(db) == 0
    # Once the operator lowers it (never having acknowledged a latch), the breach latches.
    await RiskBook(db).set_state(ACCOUNT, TradingState.REDUCE_ONLY, actor="bob", reason="exits")
    [done] = await latch.check({LONG: Decimal(50)})
    assert (done.scope, done.state) == (ACCOUNT, TradingState.HALTED)


def test_the_watchers_stop_is_a_cancel_request() -> None:
    """The watcher sends CancelStop (activities cannot import workflows); the trade's `cancel`
    handler takes CancelRequest: the same name, the same fields, the same defaults."""
    assert CancelStop.SIGNAL == TradeMessages.CANCEL
    assert set(CancelStop.model_fields) == set(CancelRequest.model_fields)
    for stop in (CancelStop(), CancelStop(flatten=True, reason="risk: account HALTED (x: y)")):
        wire = stop.model_dump(mode="json")
        assert CancelRequest.model_validate(wire).model_dump(mode="json") == wire
    assert CancelStop().model_dump() == CancelRequest().model_dump()


@contextmanager
def statements(db) -> Iterator[list[str]]:
    """Every SQL statement sent through `db`'s engine while the block runs."""
    seen: list[str] = []
    engine = db.kw["bind"].sync_engine

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ARG001
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")
            or "FOR UPDATE" in s.upper()]


async def test_the_acknowledged_level_outlives_the_latch_that_saw_it(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """The loss an operator's resume acknowledged is kept with the scope's state: a watcher
    restarted after the resume, and the worker's startup round (another latch object), hold
    the same level instead of taking the loss at their own first check as a new one."""
    sid = await add_strategy(db, "s", daily_loss_usdt=Decimal(10))
    await add_trade(db, sid, entries=(("e", Decimal(1), Decimal(100)),))
    scope = strategy_scope("s")
    first = DailyLossLatch(db, paper_client)
    [_] = await first.check({LONG: Decimal(90)})  # −10: latched
    resumed = await RiskBook(db).set_state(scope, TradingState.ACTIVE, actor="alice",
                                           reason="seen it")
    assert await first.check({LONG: Decimal(80)}) == []  # −20 acknowledged by the resume
    async with db() as session:
        row = await session.get(RiskState, scope)
        assert (row.acknowledged_loss, row.acknowledged_at) == (Decimal(20),
                                                                resumed.after.changed_at)

    restarted = DailyLossLatch(db, paper_client)  # a new watcher, or the worker's startup
    [again] = await restarted.check({LONG: Decimal(75)})  # −25: beyond the 20 acknowledged
    assert again.reason.endswith("a loss beyond the 20.00 USDT acknowledged when alice set it "
                                 "ACTIVE")
    assert (await states(db))[scope] == ("HALTED", True, LATCH_ACTOR)

    # A new change takes a new level: the one a later resume acknowledges is its own.
    await RiskBook(db).set_state(scope, TradingState.ACTIVE, actor="bob", reason="again")
    assert await DailyLossLatch(db, paper_client).check({LONG: Decimal(75)}) == []  # −25 held
    assert await first.check({LONG: Decimal(75)}) == []
    [third] = await first.check({LONG: Decimal("74.99")})
    assert third.reason.endswith("a loss beyond the 25.00 USDT acknowledged when bob set it "
                                 "ACTIVE")


async def test_the_latch_keeps_each_checked_scopes_pnl_today_written_when_it_changes(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """`risk_pnl` holds the figure the latch judged each scope with a daily limit by (realized
    with fees, unrealized at mark), for GET /risk; a round that finds it unchanged writes
    nothing, and a scope whose limit is gone loses its row."""
    sid = await add_strategy(db, "s", daily_loss_usdt=Decimal(50))
    await add_strategy(db, "free")
    rows = await add_trade(db, sid, entries=(("e", Decimal(1), Decimal(100)),),
                           closes=(("x", Decimal("0.5"), Decimal(90)),))
    async with db() as session, session.begin():
        session.add(Fill(order_id=rows["x"], exchange_trade_id="f-x", qty=Decimal("0.5"),
                         price=90, fee=Decimal("0.5"), realized_pnl=-5,
                         filled_at=datetime.now(UTC)))
    latch = DailyLossLatch(db, paper_client,
                           account_limits=RiskLimits(daily_loss_usdt=Decimal(100)))
    assert await latch.check({LONG: Decimal(80)}) == []

    async def figures() -> dict[str, tuple[str, Decimal, Decimal, datetime]]:
        async with db() as session:
            return {r.scope: (str(r.day), r.realized, r.unrealized, r.at)
                    for r in (await session.scalars(select(RiskPnl))).all()}

    got = await figures()
    today = str(trading_day(datetime.now(UTC), "UTC")[0])
    assert set(got) == {ACCOUNT, strategy_scope("s")}  # the scopes the latch checks
    assert got[strategy_scope("s")][:3] == (today, Decimal("-5.5"), Decimal(-10))  # 0.5 × −20
    assert got[ACCOUNT][:3] == got[strategy_scope("s")][:3]

    with statements(db) as seen:
        assert await latch.check({LONG: Decimal(80)}) == []
    assert seen and writes(seen) == []  # unchanged: read only
    assert await figures() == got

    await latch.check({LONG: Decimal(70)})
    moved = await figures()
    assert moved[ACCOUNT][2] == Decimal(-15) and moved[ACCOUNT][3] > got[ACCOUNT][3]

    async with db() as session, session.begin():
        await session.execute(Strategy.__table__.update().values(daily_loss_usdt=None))
    await latch.check({LONG: Decimal(70)})
    assert set(await figures()) == {ACCOUNT}


async def test_a_latch_with_nothing_configured_writes_nothing_but_the_days_equity(
    db, paper: PaperExchange, paper_client: BitunixClient
) -> None:
    """No daily limit anywhere and nothing latched: the day's first round keeps the day's
    starting equity (one `account` read, one row: what `GET /risk` and the dashboard show);
    every other round only reads (no write transaction, no row lock), however many run."""
    await add_strategy(db, "s")
    await add_trade(db, None, entries=(("e", Decimal(1), Decimal(100)),))
    latch = DailyLossLatch(db, paper_client)
    since = time.time_ns()
    assert await latch.check({LONG: Decimal(50)}) == []
    async with db() as session:
        [day] = (await session.scalars(select(RiskDay))).all()
    assert day.equity == paper.settings.paper_balance
    with statements(db) as seen:
        for _ in range(3):
            assert await latch.check({LONG: Decimal(50)}) == []
    assert seen and writes(seen) == []
    reads = [r for r in await paper.admin.requests(since) if r["path"].endswith("/account")]
    assert len(reads) == 1
    # Latched and its incident raised, later rounds only read too.
    limited = DailyLossLatch(db, paper_client,
                             account_limits=RiskLimits(daily_loss_usdt=Decimal(1)))
    [_] = await limited.check({LONG: Decimal(50)})
    with statements(db) as seen:
        assert await limited.check({LONG: Decimal(50)}) == []
    assert seen and writes(seen) == []


async def test_a_latch_may_also_flatten_every_position_of_its_scope(
    db, paper_client: BitunixClient
) -> None:
    """TRADEWIRE_RISK_LATCH_FLATTEN: the breach halts the scope with flatten, so every open
    trade of it is told to close what it owns (the kill switch's `halt --flatten`)."""
    sid = await add_strategy(db, "f", daily_loss_usdt=Decimal(10))
    await add_trade(db, sid, entries=(("fe", Decimal(1), Decimal(100)),))
    latch = DailyLossLatch(db, paper_client, flatten=True)
    [done] = await latch.check({LONG: Decimal(90)})
    assert (done.scope, done.state) == (strategy_scope("f"), TradingState.HALTED)
    assert (await RiskBook(db).states())[strategy_scope("f")].flatten is True
    [stop] = await RiskBook(db).to_stop()
    assert stop.flatten and "with flatten" in stop.reason


def test_a_latch_flattens_only_when_it_halts() -> None:
    with pytest.raises(ValueError, match="HALTED"):
        DailyLossLatch(None, None, latch_state=TradingState.REDUCE_ONLY,  # type: ignore[arg-type]
                       flatten=True)
