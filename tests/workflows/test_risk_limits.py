"""The risk limits decidable only after sizing, end to end (docs/design.md#risk): a trade whose
entry breaks a limit of its strategy or of the account ends REFUSED before any order, with an
error naming the limit, its scope and its value; nothing reaches the paper exchange, no order
row is left, and the trade row keeps the reason beside its ACCEPTED alert. A leverage above the
strategy's max_leverage or the pair's maximum is refused before the leverage is set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy import select
from temporalio.client import Client

from db.models import Signal, TradingPair
from tests.support.paper import PaperExchange
from tests.workflows.conftest import running_harness
from tests.workflows.harness import Harness, strategy
from trading.ids import HASH_CHARS, PREFIX, client_order_id
from trading.types import EntryType, TradeStatus
from webhook import strategies
from workflows.contract import Sizing, StrategySnapshot

BTC = "BTCUSDT"
QTY = Decimal("0.0100")  # 950 USDT at 95000


async def strategy_with(h: Harness, **params) -> tuple[int, StrategySnapshot]:
    """A strategy row with these parameters, and the snapshot a trade of it carries (read from
    the row as the webhook does, with the harness's quick timings)."""
    row, _ = await strategies.add(h.sessionmaker, b"k" * 32, f"risk-{uuid.uuid4().hex[:8]}",
                                  params=params)
    quick = strategy(row.name).model_dump(include={"chase_interval_s", "max_chases",
                                                   "tracking_interval_s", "max_alert_age_s"})
    return row.id, StrategySnapshot.model_validate(row, from_attributes=True).model_copy(
        update=quick)


async def signal_of(h: Harness, workflow_id: str) -> Signal:
    async with h.sessionmaker() as session:
        row = await session.scalar(select(Signal).where(Signal.workflow_id == workflow_id))
        assert row is not None
        return row


async def assert_refused_unsent(h: Harness, handle, reason: str) -> None:
    """The trade ended REFUSED with `reason`, recorded on its row; nothing was claimed or
    sent, and the alert that started it is still the trade's (ACCEPTED, its workflow)."""
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert result.error == reason
    row = await h.trade_row(handle)
    assert row.status == "REFUSED" and row.error == reason and row.committed_usdt is None
    assert not await h.orders(row.id)
    assert not await h.placed_by(handle)
    assert await h.position_qty() == 0
    alert = await signal_of(h, handle.id)
    assert alert.outcome == "ACCEPTED" and row.signal_id == alert.id


async def test_an_order_above_the_strategys_max_order_usdt_is_refused_unsent(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strategy_id, strat = await strategy_with(h, max_order_usdt=Decimal(500))
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
    await assert_refused_unsent(
        h, handle, f"risk: max_order_usdt of the strategy {strat.name!r} is 500: "
                   "this order is 950.00 USDT")
    # Within the limit, the same entry goes through and records what it committed.
    await strategies.update(h.sessionmaker, strat.name, {"max_order_usdt": Decimal(1000)})
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    assert st.filled_qty == QTY
    assert (await h.trade_row(handle)).committed_usdt == Decimal(950)


async def test_a_leverage_above_the_strategys_max_is_refused_before_it_is_set(
    harness: Harness,
) -> None:
    h = harness
    strategy_id, strat = await strategy_with(h, max_leverage=5, leverage=10)
    assert (strat.max_leverage, strat.leverage) == (5, 10)
    before = await h.exchange.leverage_margin_mode(BTC)
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
    await assert_refused_unsent(
        h, handle, f"risk: max_leverage of the strategy {strat.name!r} is 5: "
                   "this trade would use 10")
    assert not await h.place_requests(path="account/change_leverage")
    assert (await h.exchange.leverage_margin_mode(BTC)).leverage == before.leverage


async def test_a_leverage_above_the_pairs_maximum_is_refused_before_it_is_set(
    harness: Harness,
) -> None:
    h = harness
    async with h.sessionmaker() as session:
        pair = await session.get(TradingPair, BTC)
        assert pair is not None
    too_high = pair.max_leverage + 1
    handle = await h.trade(sizing=Sizing(size=QTY), leverage=too_high)
    await assert_refused_unsent(
        h, handle, f"risk: leverage {too_high} is above BTCUSDT's maximum of "
                   f"{pair.max_leverage}")
    assert not await h.place_requests(path="account/change_leverage")


@pytest_asyncio.fixture(loop_scope="session")
async def limited_harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    """A worker whose account limits (TRADEWIRE_RISK_*) allow 500 USDT an order and 900 USDT
    of exposure."""
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               risk_max_order_usdt=Decimal(500),
                               risk_max_exposure_usdt=Decimal(900)) as h:
        yield h


async def test_an_account_limit_refuses_the_same_way(limited_harness: Harness) -> None:
    h = limited_harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY))  # a trade of no strategy row: the account's
    await assert_refused_unsent(
        h, handle, "risk: max_order_usdt of the account is 500: this order is 950.00 USDT")
    # A strategy's looser limit does not lift the account's: the tighter one refuses.
    strategy_id, strat = await strategy_with(h, max_order_usdt=Decimal(5000))
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
    await assert_refused_unsent(
        h, handle, "risk: max_order_usdt of the account is 500: this order is 950.00 USDT")
    # The account's exposure counts every trade: one of 475 USDT fits, a second does not.
    first = await h.trade(sizing=Sizing(size=QTY / 2), strat=strat, strategy_id=strategy_id)
    await h.until_state(first, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    second = await h.trade(sizing=Sizing(size=QTY / 2))
    result = await h.result(second)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert (result.error or "").startswith(
        "risk: max_exposure_usdt of the account is 900: the exposure would be 950.00 USDT")
    assert not await h.orders(result.trade_id)
    assert len(await h.placed_by(first, second)) == 1  # the first trade's entry only


@pytest.mark.parametrize("entry_type,interval", [
    (EntryType.LIMIT, Decimal(1)), (EntryType.CHASE, Decimal(1)), (EntryType.CHASE, Decimal("0.5")),
], ids=["limit", "chase", "sub-second-chase"])
async def test_every_entry_type_is_refused_the_same_way(
    harness: Harness, entry_type: EntryType, interval: Decimal
) -> None:
    """A limit entry, a chase, and a chase under a second (run inside one activity:
    activities/fast_chase.py): the first claim is refused and the trade ends REFUSED with the
    reason, not as a chase that filled nothing."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strategy_id, strat = await strategy_with(h, max_order_usdt=Decimal(500))
    strat = strat.model_copy(update={"chase_interval_s": interval})
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id,
                           entry_type=entry_type, reference_price=Decimal("94990"))
    result = await h.result(handle)
    assert (result.error or "").startswith(
        f"risk: max_order_usdt of the strategy {strat.name!r} is 500: this order is 9"), result
    await assert_refused_unsent(h, handle, result.error or "")


@pytest_asyncio.fixture(loop_scope="session")
async def margin_harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    """A worker whose account allows leverage up to 10 and must keep 1000 USDT free."""
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               risk_max_leverage=10,
                               risk_min_free_margin_usdt=Decimal(1000)) as h:
        yield h


async def test_the_accounts_max_leverage_is_refused_before_it_is_set(
    margin_harness: Harness,
) -> None:
    """TRADEWIRE_RISK_MAX_LEVERAGE: a strategy asking more is refused before the symbol's
    leverage is changed; a symbol already set higher (by hand) is refused at the claim, since
    the trade would use it."""
    h = margin_harness
    await h.paper.admin.set_price(BTC, "95000")
    await h.exchange.change_leverage(BTC, 5)
    strategy_id, strat = await strategy_with(h, leverage=20)
    handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
    await assert_refused_unsent(
        h, handle, "risk: max_leverage of the account is 10: this trade would use 20")
    assert (await h.exchange.leverage_margin_mode(BTC)).leverage == 5

    await h.exchange.change_leverage(BTC, 20)
    # No leverage asked: the trade uses the symbol's (read afresh: a % sizing reads the account
    # and the leverage after its alert; the worker may reuse an older read of a change it did
    # not make itself for a few seconds).
    handle = await h.trade(sizing=Sizing(size_pct=Decimal(1)))
    await assert_refused_unsent(
        h, handle, "risk: max_leverage of the account is 10: this trade uses 20")


async def test_every_entry_type_is_measured_with_its_leverage_and_margin(
    margin_harness: Harness,
) -> None:
    """min_free_margin_usdt needs the leverage the trade uses and the margin last read: a
    sub-second chase's claim (inside its activity) carries them as any entry's does."""
    h = margin_harness
    await h.paper.admin.set_price(BTC, "95000")
    available = (await h.exchange.account()).available
    # At leverage 10, an entry whose initial margin leaves less than 1000 USDT free.
    size = ((available - Decimal(1000)) * 10 / Decimal(95000) + QTY).quantize(QTY)
    strategy_id, strat = await strategy_with(h, leverage=10)
    ours: set[str] = set()
    for kind, interval in ((EntryType.MARKET, Decimal(1)), (EntryType.CHASE, Decimal(1)),
                           (EntryType.CHASE, Decimal("0.5"))):
        handle = await h.trade(
            sizing=Sizing(size=size), entry_type=kind, strategy_id=strategy_id,
            strat=strat.model_copy(update={"chase_interval_s": interval}))
        result = await h.result(handle)
        assert result.status is TradeStatus.REFUSED, (kind, result)
        assert (result.error or "").startswith(
            "risk: min_free_margin_usdt of the account is 1000: "), (kind, result.error)
        assert "initial margin)" in (result.error or "")
        assert not await h.orders(result.trade_id)
        ours.add(client_order_id(handle.id, "E", 1)[:len(PREFIX) + HASH_CHARS])
    # None of these trades' orders reached the exchange (a trade of an earlier test still
    # winding down may place its own meanwhile: told apart by the workflow's hash).
    assert not [r for r in await h.place_requests()
                if (r["client_id"] or "")[:len(PREFIX) + HASH_CHARS] in ours]


async def test_a_trade_halted_before_its_entry_changes_no_leverage(harness: Harness) -> None:
    """A trade whose alert was accepted before a halt (or restarted by the outbox after it)
    reaches its leverage step under HALTED: it changes nothing at the exchange, not even the
    symbol's leverage, and ends REFUSED naming the state."""
    from activities.risk import RiskBook
    from trading.risk import ACCOUNT
    from trading.types import TradingState

    h = harness
    strategy_id, strat = await strategy_with(h, leverage=7)
    before = await h.exchange.leverage_margin_mode(BTC)
    assert before.leverage != 7
    book = RiskBook(h.sessionmaker)
    await book.set_state(ACCOUNT, TradingState.HALTED, actor="test", reason="halt first")
    try:
        handle = await h.trade(sizing=Sizing(size=QTY), strat=strat, strategy_id=strategy_id)
        result = await h.result(handle)
        assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
        assert "the account is HALTED" in (result.error or "")
        assert not await h.place_requests(path="account/change_leverage")
        assert not await h.placed_by(handle)
        assert (await h.exchange.leverage_margin_mode(BTC)).leverage == before.leverage
    finally:
        await book.set_state(ACCOUNT, TradingState.ACTIVE, actor="test", reason="resume")
