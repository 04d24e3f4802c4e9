"""The risk gate of every opening claim (activities/risk.py `gate_opening`, run by
activities/records.py `claim_order`) on a real PostgreSQL: a state that forbids opening refuses
the claim, and a trade's first claim is measured against its strategy's limits and the
account's, each in its own scope. A refusal rolls the claim back: no order row, the trade still
PENDING, nothing committed (docs/design.md#risk)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from activities.contract import OrderRequest
from activities.records import Records
from activities.risk import RiskBook
from db.models import Order as OrderRow
from db.models import Strategy, Trade
from trading.risk import ACCOUNT, RiskLimits, RiskRefused, strategy_scope
from trading.types import Leg, OrderType, Side, TradeStatus, TradingState
from webhook import strategies

BTC, ETH = "BTCUSDT", "ETHUSDT"
PRICE = Decimal("95000")
QTY = Decimal("0.0100")  # 950 USDT at PRICE
KEY = b"k" * 32


@pytest.fixture(autouse=True)
async def empty_book(sessionmaker) -> None:
    """Each test measures its own trades and states only."""
    async with sessionmaker() as session, session.begin():
        await session.execute(text('TRUNCATE trade, "order", fill, position, risk_state, '
                                   "risk_event CASCADE"))


async def new_strategy(sessionmaker, **limits) -> Strategy:
    name = f"gate-{uuid.uuid4().hex[:8]}"
    row, _ = await strategies.add(sessionmaker, KEY, name, params=limits)
    return row


async def new_trade(sessionmaker, strategy: Strategy | None, *, symbol: str = BTC,
                    status: TradeStatus = TradeStatus.PENDING, owned: Decimal = Decimal(0),
                    avg: Decimal | None = None, committed: Decimal | None = None) -> int:
    async with sessionmaker() as session, session.begin():
        row = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=symbol, side="LONG",
                    intent="OPEN_LONG", entry_type="limit", status=status.value,
                    strategy_id=strategy.id if strategy is not None else None,
                    filled_qty=owned, avg_entry_price=avg, committed_usdt=committed)
        session.add(row)
        await session.flush()
        return row.id


def entry(trade_id: int, *, symbol: str = BTC, qty: Decimal = QTY, target: Decimal | None = None,
          price: Decimal = PRICE, leverage: int | None = None,
          available: Decimal | None = None) -> OrderRequest:
    return OrderRequest(
        trade_id=trade_id, client_id=f"TWGATE{uuid.uuid4().hex[:12].upper()}", leg=Leg.ENTRY,
        symbol=symbol, side=Side.BUY, fill_side=Side.BUY, order_type=OrderType.LIMIT,
        qty=qty, price=price, target_qty=target, leverage=leverage, available_margin=available,
    )


async def trade_row(sessionmaker, trade_id: int) -> Trade:
    async with sessionmaker() as session:
        row = await session.get(Trade, trade_id)
        assert row is not None
        return row


async def order_rows(sessionmaker, trade_id: int) -> list[OrderRow]:
    async with sessionmaker() as session:
        return list((await session.scalars(
            select(OrderRow).where(OrderRow.trade_id == trade_id))).all())


async def refused(sessionmaker, req: OrderRequest, account: RiskLimits | None = None,
                  ) -> RiskRefused:
    """Claim `req` expecting a refusal; checks that nothing of the claim is left."""
    before = (await trade_row(sessionmaker, req.trade_id)).status
    orders = len(await order_rows(sessionmaker, req.trade_id))
    with pytest.raises(RiskRefused) as err:
        await Records(sessionmaker).claim_order(req, account)
    assert len(await order_rows(sessionmaker, req.trade_id)) == orders
    row = await trade_row(sessionmaker, req.trade_id)
    assert row.status == before
    if before == TradeStatus.PENDING.value:
        assert row.committed_usdt is None
    return err.value


async def admitted(sessionmaker, req: OrderRequest, account: RiskLimits | None = None) -> None:
    claim = await Records(sessionmaker).claim_order(req, account)
    assert claim.created
    assert (await trade_row(sessionmaker, req.trade_id)).status == TradeStatus.ENTERING.value


# --- states ---------------------------------------------------------------------------------


@pytest.mark.parametrize("state", [TradingState.HALTED, TradingState.REDUCE_ONLY])
@pytest.mark.parametrize("where", ["account", "strategy"])
async def test_a_state_that_forbids_opening_refuses_the_claim(
    sessionmaker, state: TradingState, where: str
) -> None:
    strat, other = await new_strategy(sessionmaker), await new_strategy(sessionmaker)
    scope = ACCOUNT if where == "account" else strategy_scope(strat.name)
    book = RiskBook(sessionmaker)
    await book.set_state(scope, state, actor="test", reason="a test stop")
    trade = await new_trade(sessionmaker, strat)
    err = await refused(sessionmaker, entry(trade, target=QTY))
    assert err.limit == "state" and err.scope == scope
    label = "account" if where == "account" else f"strategy {strat.name!r}"
    assert f"the {label} is {state.value}: no new position is opened" in err.message
    # A strategy's state is its own: another strategy's trade opens; the account's stops all.
    other_trade = await new_trade(sessionmaker, other, symbol=ETH)
    if where == "account":
        await refused(sessionmaker, entry(other_trade, symbol=ETH, price=Decimal(3000)))
    else:
        await admitted(sessionmaker, entry(other_trade, symbol=ETH, price=Decimal(3000)))
    # Resumed, the same trade's claim goes through and commits its notional.
    await book.set_state(scope, TradingState.ACTIVE, actor="test", reason="resume")
    await admitted(sessionmaker, entry(trade, target=QTY * 3))
    assert (await trade_row(sessionmaker, trade)).committed_usdt == QTY * 3 * PRICE


async def test_the_stricter_of_account_and_strategy_is_the_one_named(sessionmaker) -> None:
    strat = await new_strategy(sessionmaker)
    book = RiskBook(sessionmaker)
    await book.set_state(ACCOUNT, TradingState.REDUCE_ONLY, actor="test", reason="r")
    await book.set_state(strategy_scope(strat.name), TradingState.HALTED, actor="test",
                         reason="h")
    err = await refused(sessionmaker, entry(await new_trade(sessionmaker, strat)))
    assert err.scope == strategy_scope(strat.name) and "is HALTED" in err.message


async def test_a_later_claim_of_an_admitted_entry_is_checked_for_state_only(
    sessionmaker,
) -> None:
    """A re-price, the next part of a split entry, a market fallback: their trade is ENTERING
    (admitted by its first claim), so the limits are not measured again, the state is."""
    strat = await new_strategy(sessionmaker, max_order_usdt=Decimal(1), max_open_trades=1)
    await new_trade(sessionmaker, strat, symbol=ETH, status=TradeStatus.TRACKING)
    trade = await new_trade(sessionmaker, strat, status=TradeStatus.ENTERING,
                            committed=Decimal(950))
    tiny = RiskLimits(max_order_usdt=Decimal(1), max_exposure_usdt=Decimal(1))
    claim = await Records(sessionmaker).claim_order(entry(trade), tiny)
    assert claim.created and len(await order_rows(sessionmaker, trade)) == 1
    assert (await trade_row(sessionmaker, trade)).committed_usdt == Decimal(950)  # unchanged
    await RiskBook(sessionmaker).set_state(ACCOUNT, TradingState.HALTED, actor="test",
                                           reason="the kill switch")
    err = await refused(sessionmaker, entry(trade))
    assert err.limit == "state"


# --- limits ---------------------------------------------------------------------------------

# (limit, its value, what the scope already holds, the entry's extra fields, a value that fits,
#  the text the refusal says after "<limit> of the <scope> is <value>: ")
LIMIT_CASES = [
    ("max_order_usdt", Decimal(900), [], {}, Decimal(950), "this order is 950.00 USDT"),
    ("max_position_usdt", Decimal(1400), [(BTC, Decimal("0.006"), Decimal(90000))],
     {}, Decimal(1490), "BTCUSDT would hold 1490.00 USDT (540.00 USDT open + 950.00 USDT new)"),
    ("max_exposure_usdt", Decimal(1500), [(ETH, Decimal("0.2"), Decimal(3000))],
     {}, Decimal(1550), "the exposure would be 1550.00 USDT (600.00 USDT open + 950.00 USDT new)"),
    ("max_open_trades", 2, [(ETH, Decimal("0.1"), Decimal(3000))] * 2, {}, 3,
     "2 trade(s) already entering or open"),
    ("max_leverage", 5, [], {"leverage": 10}, 10, "this trade uses 10"),
    ("min_free_margin_usdt", Decimal(600), [], {"leverage": 2, "available": Decimal(1000)},
     Decimal(525), "525.00 USDT would be left free (1000.00 USDT available − 475.00 USDT "
                   "initial margin)"),
]


@pytest.mark.parametrize("where", ["strategy", "account"])
@pytest.mark.parametrize("limit,value,held,extra,fits,says", LIMIT_CASES,
                         ids=[c[0] for c in LIMIT_CASES])
async def test_each_limit_refuses_naming_itself_its_scope_and_its_value(
    sessionmaker, where: str, limit: str, value, held, extra, fits, says: str
) -> None:
    strat = await new_strategy(sessionmaker, **({limit: value} if where == "strategy" else {}))
    account = RiskLimits(**{limit: value}) if where == "account" else None
    for symbol, qty, avg in held:
        await new_trade(sessionmaker, strat, symbol=symbol, status=TradeStatus.TRACKING,
                        owned=qty, avg=avg)
    trade = await new_trade(sessionmaker, strat)
    err = await refused(sessionmaker, entry(trade, **extra), account)
    scope = strategy_scope(strat.name) if where == "strategy" else ACCOUNT
    label = f"strategy {strat.name!r}" if where == "strategy" else "account"
    assert err.limit == limit and err.scope == scope
    assert err.message == f"risk: {limit} of the {label} is {value}: {says}"
    # At the value that just fits, the same claim is admitted.
    if where == "strategy":
        await strategies.update(sessionmaker, strat.name, {limit: fits})
    else:
        account = RiskLimits(**{limit: fits})
    await admitted(sessionmaker, entry(trade, **extra), account)


async def test_each_scope_counts_its_own_trades_and_the_tighter_limit_refuses(
    sessionmaker,
) -> None:
    strat, other = await new_strategy(sessionmaker), await new_strategy(sessionmaker)
    # 600 USDT held by another strategy, 300 by a trade of no strategy (adopted quantity).
    await new_trade(sessionmaker, other, symbol=ETH, status=TradeStatus.TRACKING,
                    owned=Decimal("0.2"), avg=Decimal(3000))
    await new_trade(sessionmaker, None, symbol=ETH, status=TradeStatus.TRACKING,
                    owned=Decimal("0.1"), avg=Decimal(3000))
    await strategies.update(sessionmaker, strat.name, {"max_exposure_usdt": Decimal(1000)})
    trade = await new_trade(sessionmaker, strat)
    # The strategy's own exposure is 0 + 950: within 1000. The account's is 900 + 950.
    err = await refused(sessionmaker, entry(trade), RiskLimits(max_exposure_usdt=Decimal(1800)))
    assert err.scope == ACCOUNT and "the exposure would be 1850.00 USDT" in err.message
    # The account loose, the strategy tight: the strategy's refuses.
    await strategies.update(sessionmaker, strat.name, {"max_exposure_usdt": Decimal(900)})
    err = await refused(sessionmaker, entry(trade), RiskLimits(max_exposure_usdt=Decimal(5000)))
    assert err.scope == strategy_scope(strat.name)
    await strategies.update(sessionmaker, strat.name, {}, clear=["max_exposure_usdt"])
    await admitted(sessionmaker, entry(trade), RiskLimits(max_exposure_usdt=Decimal(1850)))


async def test_a_trade_still_entering_counts_what_it_committed(sessionmaker) -> None:
    """The first claim records target × price; until the entry fills, the next trade's limits
    count that, not the nothing it holds yet (nor only its first order's part)."""
    strat = await new_strategy(sessionmaker, max_position_usdt=Decimal(3000))
    first = await new_trade(sessionmaker, strat)
    await admitted(sessionmaker, entry(first, qty=QTY, target=QTY * 3))  # 950 now, 2850 in all
    assert (await trade_row(sessionmaker, first)).committed_usdt == Decimal(2850)
    second = await new_trade(sessionmaker, strat)
    err = await refused(sessionmaker, entry(second))
    assert "BTCUSDT would hold 3800.00 USDT (2850.00 USDT open + 950.00 USDT new)" in err.message
    # Once it holds more than it committed (filled at a higher price), that counts.
    async with sessionmaker() as session, session.begin():
        await session.execute(Trade.__table__.update().where(Trade.id == first).values(
            filled_qty=QTY * 3, avg_entry_price=Decimal(96000)))
    err = await refused(sessionmaker, entry(second))
    assert "(2880.00 USDT open + 950.00 USDT new)" in err.message


@pytest.mark.parametrize("attempt", range(3))
async def test_of_two_first_claims_that_fit_only_alone_exactly_one_passes(
    sessionmaker, attempt: int
) -> None:
    strat = await new_strategy(sessionmaker, max_exposure_usdt=Decimal(1500))
    btc = await new_trade(sessionmaker, strat)
    eth = await new_trade(sessionmaker, strat, symbol=ETH)
    records = Records(sessionmaker)  # each claim runs in its own session and transaction
    outcomes = await asyncio.gather(
        records.claim_order(entry(btc)),  # 950
        records.claim_order(entry(eth, symbol=ETH, qty=Decimal("0.3"), price=Decimal(3000))),
        return_exceptions=True,  # 900
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Claim", "RiskRefused"], outcomes
    [err] = [o for o in outcomes if isinstance(o, RiskRefused)]
    assert err.limit == "max_exposure_usdt"
    statuses = sorted([(await trade_row(sessionmaker, t)).status for t in (btc, eth)])
    assert statuses == ["ENTERING", "PENDING"]
    orders = [*await order_rows(sessionmaker, btc), *await order_rows(sessionmaker, eth)]
    assert len(orders) == 1
